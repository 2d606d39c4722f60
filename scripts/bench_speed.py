"""Speed of intentbal against the plain Hugging Face Trainer path, side by side in one run.

  python scripts/bench_speed.py [--data data/benchmarks/banking77-lt] [--epochs 2] [--gpu]
                                [--repeats 3] [--write BENCHMARKS.md]

Both sides train the same model (the default all-MiniLM-L6-v2) on the same rows with the same
batch size, epochs, max length and learning rate: scripts/hf_trainer_baseline.py
(with --bf16 on a GPU) and `intentbal train` (augmentation off, so the rows are identical).
Then, on the model intentbal trained: batch prediction with the baseline's plain
`model(**tokenizer(batch))` loop against IntentClassifier.predict on torch and, after
`intentbal export`, on ONNX Runtime (best of --repeats runs each, taking turns), the median
latency of one utterance on each backend, how far ONNX Runtime's outputs are from torch's,
and intentbal's peak resident memory while training. Prints JSON and, with --write, replaces
this section of the Markdown file. Without onnxruntime the ONNX entries are null.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intentbal.predict import IntentClassifier

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scripts" / "hf_trainer_baseline.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--gpu", action="store_true", help="bf16 on the baseline side; intentbal uses its auto precision")
    ap.add_argument("--model", type=Path, help="model folder (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--repeats", type=int, default=3, help="batch prediction: best of this many timed runs")
    ap.add_argument("--write", type=Path, help="Markdown file whose speed section is replaced")
    a = ap.parse_args()

    from intentbal.loading import embedded_model_dir

    model = a.model or embedded_model_dir()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ours = train_intentbal(a, model, tmp / "ib")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        base = train_baseline(a, model, tmp / "base.csv")
        texts = read_texts(a.data / "test.csv")
        predict = compare_prediction(tmp / "ib" / "model", texts, a.max_length, repeats=a.repeats)
    result = {
        "train_samples_per_second": {"baseline": base["train_samples_per_second"],
                                     "intentbal": ours["train_samples_per_second"]},
        "train_speedup": round(ours["train_samples_per_second"] / base["train_samples_per_second"], 2),
        "predict_sentences_per_second": predict["throughput"],
        "predict_speedup": predict["speedup"],
        "latency_ms": predict["latency_ms"],
        "predict_speedup_onnx": predict.get("speedup_onnx"),
        "latency_ms_onnx": predict.get("latency_ms_onnx"),
        "onnx": predict["onnx"],
        "peak_rss_mb_training": round(peak_mb),
    }
    print(json.dumps(result, indent=2))
    if a.write:
        write_section(a.write, a, result)


def train_intentbal(a: argparse.Namespace, model: Path, out: Path) -> dict:
    sets = {"train.epochs": a.epochs, "train.batch_size": a.batch_size, "train.learning_rate": a.lr,
            "model.max_length": a.max_length, "augment.enabled": "false", "model.name_or_path": model,
            "train.logit_adjustment": 0, "train.save_steps": 0, "evaluate.plots": "false"}
    cmd = [sys.executable, "-m", "intentbal.cli", "train", "--train", str(a.data / "train.csv"),
           "--eval", str(a.data / "test.csv"), "--output", str(out)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "train_metrics.json").read_text())


def train_baseline(a: argparse.Namespace, model: Path, out: Path) -> dict:
    cmd = [sys.executable, str(BASELINE), "--train", str(a.data / "train.csv"), "--test", str(a.data / "test.csv"),
           "--model", str(model), "--out", str(out), "--epochs", str(a.epochs), "--batch-size", str(a.batch_size),
           "--lr", str(a.lr), "--max-length", str(a.max_length)] + (["--bf16"] if a.gpu and _cuda() else [])
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cuda() -> bool:
    import torch

    if not torch.cuda.is_available():
        print("warning: --gpu without a CUDA device: both sides run in fp32 on the CPU", file=sys.stderr)
        return False
    return True


def read_texts(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def compare_prediction(model_dir: Path, texts: list[str], max_length: int, *, repeats: int = 3) -> dict:
    """Batch throughput (best of ``repeats``, the three rivals taking turns) and single-utterance
    latency of the baseline loop, IntentClassifier on torch and, once exported, on ONNX Runtime."""
    import torch

    from intentbal.predict import IntentClassifier

    clf = IntentClassifier.load(model_dir, backend="torch")
    device = next(clf.model.parameters()).device

    def plain() -> None:  # the baseline's loop, verbatim in effect
        with torch.no_grad():
            for i in range(0, len(texts), 128):
                enc = clf.tokenizer(texts[i:i + 128], truncation=True, max_length=max_length,
                                    padding=True, return_tensors="pt").to(device)
                clf.model(**enc).logits.argmax(-1).tolist()

    rivals = {"baseline": plain, "intentbal": lambda: clf.predict(texts)}
    onnx, export = onnx_classifier(model_dir, clf, texts)
    if onnx is not None:
        rivals["intentbal_onnx"] = lambda: onnx.predict(texts)
    timings = best_rates(rivals, len(texts), repeats)
    result = {
        "throughput": {k: round(v, 1) for k, v in timings.items()},
        "speedup": round(timings["intentbal"] / timings["baseline"], 2),
        "latency_ms": latency(clf, texts[:300]),
        "onnx": export,
    }
    if onnx is not None:
        result["speedup_onnx"] = round(timings["intentbal_onnx"] / timings["baseline"], 2)
        result["latency_ms_onnx"] = latency(onnx, texts[:300])
    return result


def onnx_classifier(
    model_dir: Path, torch_clf: IntentClassifier, texts: list[str]
) -> tuple[IntentClassifier | None, dict]:
    """Export ``model_dir`` and load it on ONNX Runtime; how the export went, and how far its
    probabilities are from torch's on ``texts``. None (and the reason) without onnxruntime."""
    import numpy as np

    from intentbal.errors import IntentbalError
    from intentbal.export import export_onnx
    from intentbal.predict import IntentClassifier

    start = time.perf_counter()
    try:
        export = export_onnx(model_dir)
    except IntentbalError as exc:
        print(f"warning: no ONNX Runtime measurement: {exc}", file=sys.stderr)
        return None, {"skipped": str(exc)}
    seconds = time.perf_counter() - start
    onnx = IntentClassifier.load(model_dir, backend="onnx")
    ours, theirs = torch_clf.proba(texts), onnx.proba(texts)
    return onnx, {"export_seconds": round(seconds, 1), "max_abs_logit_diff": export.max_abs_diff,
                  "max_abs_proba_diff": float(np.abs(ours - theirs).max()),
                  "same_prediction": float((ours.argmax(1) == theirs.argmax(1)).mean())}


def best_rates(rivals: dict, n: int, repeats: int) -> dict[str, float]:
    """Texts per second of each rival, best of ``repeats`` rounds after one warm-up each."""
    best = dict.fromkeys(rivals, 0.0)
    for fn in rivals.values():
        fn()
    for _ in range(repeats):
        for name, fn in rivals.items():
            start = time.perf_counter()
            fn()
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def latency(clf: IntentClassifier, texts: list[str]) -> dict[str, float]:
    """Median and p95 milliseconds of ``clf.predict([text])``, one text at a time."""
    clf.predict(texts[:1])
    latencies = []
    for text in texts:
        start = time.perf_counter()
        clf.predict([text])
        latencies.append((time.perf_counter() - start) * 1000)
    return {"median": round(statistics.median(latencies), 2),
            "p95": round(sorted(latencies)[int(0.95 * len(latencies))], 2)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def onnx_rows(r: dict) -> str:
    """The ONNX Runtime rows of the table, or a line saying why there are none."""
    p, lat = r["predict_sentences_per_second"], r["latency_ms_onnx"]
    if lat is None:
        return f"| ONNX Runtime | not measured: {r['onnx'].get('skipped', '')} | | |\n"
    return (f"| batch prediction sentences/s, ONNX Runtime | {p['baseline']:.1f} | {p['intentbal_onnx']:.1f} | "
            f"**{r['predict_speedup_onnx']:.2f}x** |\n"
            f"| single-utterance latency, median (p95), ONNX Runtime | | {lat['median']:.1f} ms "
            f"({lat['p95']:.1f} ms) | |\n"
            f"| ONNX Runtime vs torch: largest logit difference, same predictions | | "
            f"{r['onnx']['max_abs_logit_diff']:.1g}, {100 * r['onnx']['same_prediction']:.1f}% | |\n")


def write_section(path: Path, a: argparse.Namespace, r: dict) -> None:
    tag = "gpu" if a.gpu else "cpu"
    cmd = "python scripts/bench_speed.py " + " ".join(sys.argv[1:])
    t, p = r["train_samples_per_second"], r["predict_sentences_per_second"]
    body = f"""<!-- speed:{tag}:start -->
Measured {dt.date.today().isoformat()} on {machine()}; `{cmd}`
(data `{a.data.name}`, {a.epochs:g} epochs, batch {a.batch_size}, max length {a.max_length}, lr {a.lr:g}).

| measure | Trainer baseline | intentbal | ratio |
| --- | --- | --- | --- |
| training samples/s | {t['baseline']:.1f} | {t['intentbal']:.1f} | **{r['train_speedup']:.2f}x** |
| batch prediction sentences/s | {p['baseline']:.1f} | {p['intentbal']:.1f} | **{r['predict_speedup']:.2f}x** |
| single-utterance latency, median (p95) | | {r['latency_ms']['median']:.1f} ms ({r['latency_ms']['p95']:.1f} ms) | |
{onnx_rows(r)}| peak resident memory, training | | {r['peak_rss_mb_training']} MB | |
<!-- speed:{tag}:end -->"""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- speed:{tag}:start -->.*?<!-- speed:{tag}:end -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
