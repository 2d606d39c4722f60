"""Speed of intentbal against the plain Hugging Face Trainer path, side by side in one run.

  python scripts/bench_speed.py [--data data/benchmarks/banking77-lt] [--epochs 20] [--gpu]
                                [--limit N] [--eager-too] [--all-layers-too] [--repeats 3]
                                [--write BENCHMARKS.md]

Both sides train the same model (the default all-MiniLM-L6-v2) on the same rows with the same
batch size, epochs, max length and learning rate: scripts/hf_trainer_baseline.py
(with --bf16 on a GPU) and `intentbal train` (augmentation off, so the rows are identical; its
default train.step, which is the bucketed loop on a GPU), each in a process of its own. What users
wait for is measured two ways, separately: the steady-state training rate, samples per second over
the epochs after the first (so start-up, warm-up and, on a GPU, the CUDA graph captures are
excluded; null with fewer than two epochs), and the end-to-end wall time of the process (loading,
training, predicting the test set, writing). --all-layers-too also trains intentbal with
train.trainable_layers=null, so every layer trains, as in the baseline (the same work per step,
where the default recipe trains the top layers only, which always takes the eager loop), and reports
its rates, wall time and test accuracy beside the default's; --eager-too likewise with every layer
and train.step=eager, the loop the bucketed one is checked against. --limit N
trains and predicts a seeded sample of N rows of each split, for a quick run on a CPU.
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
import math
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intentbal.inference.classifier import IntentClassifier

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scripts" / "hf_trainer_baseline.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "benchmarks" / "banking77-lt")
    ap.add_argument("--epochs", type=float, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--gpu", action="store_true", help="bf16 on the baseline side; intentbal uses its auto precision")
    ap.add_argument("--model", type=Path, help="model folder (default: the embedded all-MiniLM-L6-v2)")
    ap.add_argument("--limit", type=int, help="a seeded sample of this many rows of train and of test")
    ap.add_argument("--eager-too", action="store_true",
                    help="also train intentbal with every layer trainable and train.step=eager")
    ap.add_argument("--all-layers-too", action="store_true",
                    help="also train intentbal with every layer trainable (train.trainable_layers=null)")
    ap.add_argument("--repeats", type=int, default=3, help="batch prediction: best of this many timed runs")
    ap.add_argument("--write", type=Path, help="Markdown file whose speed section is replaced")
    ap.add_argument("--timed-train", type=Path, help=argparse.SUPPRESS)  # the child process of one intentbal run
    a = ap.parse_args()
    if a.timed_train:
        timed_train(a.timed_train)
        return

    from intentbal.model.loading import embedded_model_dir

    model = a.model or embedded_model_dir()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = sample(a.data, tmp / "data", a.limit) if a.limit else a.data
        ours = train_intentbal(a, model, data, tmp / "ib")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        eager = (train_intentbal(a, model, data, tmp / "ib-eager", step="eager",
                                 extra={"train.trainable_layers": "null"}) if a.eager_too else None)
        full = (train_intentbal(a, model, data, tmp / "ib-all", extra={"train.trainable_layers": "null"})
                if a.all_layers_too else None)
        base = train_baseline(a, model, data, tmp / "base.csv")
        texts = read_texts(data / "test.csv")
        predict = compare_prediction(tmp / "ib" / "model", texts, a.max_length, repeats=a.repeats)
    steady = {"baseline": base["steady_samples_per_second"], "intentbal": ours["steady_samples_per_second"]}
    result = {
        "steady_train_samples_per_second": steady,
        "train_speedup": ratio(steady["intentbal"], steady["baseline"]),
        "whole_run_train_samples_per_second": {"baseline": base["train_samples_per_second"],
                                               "intentbal": ours["train_samples_per_second"]},
        "wall_seconds": {"baseline": base["wall_seconds"], "intentbal": ours["wall_seconds"]},
        "wall_speedup": ratio(base["wall_seconds"], ours["wall_seconds"]),
        "intentbal_step": ours["step"],
        "intentbal_test_accuracy": ours["test_accuracy"],
        "intentbal_eager_step": eager,
        "intentbal_all_layers": full,
        "all_layers_train_speedup": ratio(full["steady_samples_per_second"], steady["baseline"]) if full else None,
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


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def sample(data: Path, folder: Path, n: int) -> Path:
    """``folder`` with a seeded sample of ``n`` rows of ``data``'s train.csv and test.csv."""
    folder.mkdir(parents=True)
    for split in ("train.csv", "test.csv"):
        with open(data / split, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames or [], list(reader)
        with open(folder / split, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(random.Random(0).sample(rows, min(n, len(rows))))
    return folder


def train_intentbal(a: argparse.Namespace, model: Path, data: Path, out: Path, *, step: str = "auto",
                    extra: dict[str, str] | None = None) -> dict:
    """``intentbal train`` in a process of its own, through :func:`timed_train`: its training metrics,
    its wall time, the steady-state rate after the first epoch, and its test accuracy. ``extra``:
    more config overrides."""
    sets = {"train.epochs": a.epochs, "train.batch_size": a.batch_size, "train.learning_rate": a.lr,
            "model.max_length": a.max_length, "augment.enabled": "false", "model.name_or_path": str(model),
            "train.logit_adjustment": 0, "train.save_steps": 0, "evaluate.plots": "false", "train.step": step,
            **(extra or {})}
    spec = out.with_suffix(".json")
    spec.write_text(json.dumps({"sets": sets, "train": str(data / "train.csv"), "eval": str(data / "test.csv"),
                                "output": str(out), "batch_size": a.batch_size}))
    start = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--timed-train", str(spec)], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "train_metrics.json").read_text())
    marks = json.loads(spec.read_text())["marks"]
    rows, samples = metrics["train_rows"], metrics["train_samples"]
    steady = (samples - rows) / (marks["last"][1] - marks["first_epoch"][1]) if marks.get("first_epoch") else None
    report = json.loads((out / "report.json").read_text())
    return {"step": step, "steady_samples_per_second": None if steady is None else round(steady, 1),
            "train_samples_per_second": metrics["train_samples_per_second"], "wall_seconds": round(wall, 1),
            "test_accuracy": round(report["summary"]["accuracy"], 4)}


def timed_train(spec_path: Path) -> None:
    """The child process of :func:`train_intentbal`: ``intentbal train`` as the CLI runs it, noting when
    the first epoch's steps and the last step are done (on a GPU, after waiting for them) in the spec."""
    import torch

    from intentbal.commands.train import train_run
    from intentbal.config import load_config

    spec = json.loads(spec_path.read_text())
    config = load_config(overrides=[f"{k}={v}" for k, v in spec["sets"].items()],
                         values={"data.train": spec["train"], "data.eval": spec["eval"], "output_dir": spec["output"]})
    marks: dict[str, Any] = {}
    epoch_steps = math.ceil(count_rows(Path(spec["train"])) / spec["batch_size"])

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "train" and done in (epoch_steps, total):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks["first_epoch" if done == epoch_steps and done < total else "last"] = (done, time.perf_counter())

    train_run(config, progress=progress)
    spec_path.write_text(json.dumps({**spec, "marks": marks}))


def count_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for _ in csv.DictReader(f))


def train_baseline(a: argparse.Namespace, model: Path, data: Path, out: Path) -> dict:
    cmd = [sys.executable, str(BASELINE), "--train", str(data / "train.csv"), "--test", str(data / "test.csv"),
           "--model", str(model), "--out", str(out), "--epochs", str(a.epochs), "--batch-size", str(a.batch_size),
           "--lr", str(a.lr), "--max-length", str(a.max_length)] + (["--bf16"] if a.gpu and _cuda() else [])
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_seconds": round(time.perf_counter() - start, 1)}


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

    from intentbal.inference.classifier import IntentClassifier

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
    from intentbal.inference.classifier import IntentClassifier
    from intentbal.inference.export import export_onnx

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


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} cores ({cpu_name()}), {gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


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
    p = r["predict_sentences_per_second"]
    body = f"""<!-- speed:{tag}:start -->
Measured {dt.date.today().isoformat()} on {machine()}; `{cmd}`
(data `{a.data.name}`{f", a sample of {a.limit} rows of each split" if a.limit else ""}, {a.epochs:g} epochs,
batch {a.batch_size}, max length {a.max_length}, lr {a.lr:g}; intentbal with train.step={r["intentbal_step"]}).
Steady state: the epochs after the first. Wall time: the whole process, from start to the test set's predictions.

| measure | Trainer baseline | intentbal | ratio |
| --- | --- | --- | --- |
{training_rows(r)}| batch prediction sentences/s | {p['baseline']:.1f} | {p['intentbal']:.1f} | \
**{r['predict_speedup']:.2f}x** |
| single-utterance latency, median (p95) | | {r['latency_ms']['median']:.1f} ms ({r['latency_ms']['p95']:.1f} ms) | |
{onnx_rows(r)}| peak resident memory, training | | {r['peak_rss_mb_training']} MB | |
<!-- speed:{tag}:end -->"""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- speed:{tag}:start -->.*?<!-- speed:{tag}:end -->", re.S)
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text, encoding="utf-8")


def training_rows(r: dict) -> str:
    """The training rows of the table: steady-state rate, whole-run rate and wall time, and with
    --eager-too intentbal's eager loop beside them."""
    steady, whole = r["steady_train_samples_per_second"], r["whole_run_train_samples_per_second"]
    wall = r["wall_seconds"]
    rows = (f"| training samples/s, steady state | {_num(steady['baseline'])} | {_num(steady['intentbal'])} | "
            f"**{_times(r['train_speedup'])}** |\n"
            f"| training samples/s, whole run | {whole['baseline']:.1f} | {whole['intentbal']:.1f} | "
            f"{_times(ratio(whole['intentbal'], whole['baseline']))} |\n"
            f"| end-to-end wall time | {wall['baseline']:.1f} s | {wall['intentbal']:.1f} s | "
            f"**{_times(r['wall_speedup'])}** |\n")
    eager = r["intentbal_eager_step"]
    if eager:
        rows += (f"| intentbal training every layer with train.step=eager: steady samples/s, wall time, test "
                 f"accuracy | | {_num(eager['steady_samples_per_second'])}, {eager['wall_seconds']:.1f} s, "
                 f"{eager['test_accuracy']:.4f} | |\n")
    full = r.get("intentbal_all_layers")
    if full:
        rows += (f"| intentbal training every layer, as the baseline does: steady samples/s (wall time, test "
                 f"accuracy) | {_num(steady['baseline'])} | {_num(full['steady_samples_per_second'])} "
                 f"({full['wall_seconds']:.1f} s, {full['test_accuracy']:.4f}; default: "
                 f"{r['intentbal_test_accuracy']:.4f}) | **{_times(r['all_layers_train_speedup'])}** |\n")
    return rows


def _num(value: float | None) -> str:
    return "n/a (one epoch)" if value is None else f"{value:.1f}"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


if __name__ == "__main__":
    main()
