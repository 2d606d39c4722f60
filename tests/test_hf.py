"""The saved model folder in plain transformers: registered Auto classes, remote code, truncation."""

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli

LONG = ["where is my parcel " * 12 + "refund please", "i want my money back " * 10 + "track my order",
        "forgot my password and " * 12 + "someone stole my card"]  # each over max_length (32) tokens
SHORT = ["where is my parcel", "refund please", "forgot password", "stolen card"]


def run_python(code: str, tmp_path, *, model) -> dict:
    """Run ``code`` in a fresh interpreter (``MODEL``, ``TEXTS`` predefined); it prints one JSON object."""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf-modules")}  # remote code is copied there
    prelude = f"import json, sys\nMODEL = {str(model)!r}\nTEXTS = {SHORT + LONG!r}\n"
    proc = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CLASSIFY = """
classify = pipeline("text-classification", model=MODEL, trust_remote_code=False, truncation=True)
print(json.dumps({"class": type(classify.model).__module__ + "." + type(classify.model).__name__,
                  "labels": [r["label"] for r in classify(TEXTS)],
                  "remote": any(m.startswith("transformers_modules") for m in sys.modules)}))
"""


@pytest.mark.slow  # a Python process per import order
@pytest.mark.parametrize("imports", [
    "import intentbal\nintentbal.register()\nfrom transformers import pipeline",
    "from transformers import pipeline\nimport intentbal\nintentbal.register()",
], ids=["register-first", "pipeline-first"])
def test_pipeline_loads_the_prototype_head_without_remote_code_after_register(trained_run, tmp_path, imports):
    from intentbal.inference.classifier import IntentClassifier

    got = run_python(imports + CLASSIFY, tmp_path, model=trained_run / "model")
    assert got["class"] == "intentbal.model.modeling.IntentbalPrototypeClassifier"
    assert not got["remote"], "no code from the model folder ran"
    assert got["labels"] == IntentClassifier.load(trained_run / "model").predict(SHORT + LONG)[0]


def test_import_intentbal_has_no_side_effects_and_register_is_explicit(trained_run, tmp_path):
    code = ("import intentbal\nLOADED = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
            "from transformers import AutoConfig\n"
            "try:\n    AutoConfig.from_pretrained(MODEL, trust_remote_code=False)\n    before = 'loaded'\n"
            "except ValueError:\n    before = 'refused'\n"
            "intentbal.register()\nintentbal.register()\n"
            "config = AutoConfig.from_pretrained(MODEL, trust_remote_code=False)\n"
            "print(json.dumps({'loaded': LOADED, 'before': before, 'class': type(config).__module__}))")
    got = run_python(code, tmp_path, model=trained_run / "model")
    assert got == {"loaded": [], "before": "refused", "class": "intentbal.model.modeling"}


@pytest.mark.slow  # a Python process that loads the model
def test_without_intentbal_the_folder_loads_with_trust_remote_code_only(trained_run, tmp_path):
    from intentbal.inference.classifier import IntentClassifier

    code = """
class NoIntentbal:  # as if intentbal were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "intentbal":
            raise ImportError("no intentbal here")
sys.meta_path.insert(0, NoIntentbal())
from transformers import pipeline
try:
    pipeline("text-classification", model=MODEL, trust_remote_code=False)
    refused = False
except ValueError as exc:
    refused = "trust_remote_code" in str(exc)
classify = pipeline("text-classification", model=MODEL, trust_remote_code=True, truncation=True)
results = classify(TEXTS)
print(json.dumps({"refused": refused, "module": type(classify.model).__module__,
                  "labels": [r["label"] for r in results], "scores": [r["score"] for r in results],
                  "intentbal": any(m.split(".")[0] == "intentbal" for m in sys.modules)}))
"""
    got = run_python(code, tmp_path, model=trained_run / "model")
    assert got["refused"] and not got["intentbal"]
    assert got["module"].startswith("transformers_modules")
    ours, confidence = IntentClassifier.load(trained_run / "model").predict(SHORT + LONG)
    assert got["labels"] == ours
    assert got["scores"] == pytest.approx(confidence, abs=1e-5)


def test_pipeline_scores_long_texts_like_intentbal(trained_run, tmp_path):
    """The tokenizer saved with the model cuts at intentbal's max_length, so long texts score the same."""
    from transformers import pipeline

    import intentbal
    from intentbal.inference.classifier import IntentClassifier

    intentbal.register()
    model = trained_run / "model"
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == json.loads((model / "intentbal.json").read_text())["max_length"]
    assert tokenizer_config["model_max_length"] == 32

    clf = IntentClassifier.load(model, backend="torch")
    probs = clf.proba(SHORT + LONG)
    assert clf.truncated == len(LONG)
    classify = pipeline("text-classification", model=str(model), truncation=True, top_k=None)
    for row, scored in zip(probs, classify(SHORT + LONG)):
        theirs = {r["label"]: r["score"] for r in scored}
        assert [theirs[i] for i in clf.intents] == pytest.approx(row.tolist(), abs=1e-5)

    texts = tmp_path / "texts.csv"
    texts.write_text("text\n" + "".join(f"{t}\n" for t in SHORT + LONG))
    assert run_cli("predict", "--model", model, "--input", texts, "--output", tmp_path / "p.csv") == 0
    with open(tmp_path / "p.csv", newline="") as f:
        predicted = list(csv.DictReader(f))
    top = [r[0] for r in classify(SHORT + LONG, top_k=1)]
    assert [p["prediction"] for p in predicted] == [r["label"] for r in top]
    assert [float(p["confidence"]) for p in predicted] == pytest.approx([r["score"] for r in top], abs=1e-4)
