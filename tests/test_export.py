"""ONNX export and the ONNX Runtime backend: same predictions as torch, files that appear whole."""

import contextlib
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from intentbal.errors import IntentbalError
from intentbal.inference.classifier import IntentClassifier
from intentbal.inference.export import CHECK_FILE, ONNX_FILE, export_onnx

from conftest import ROOT, TOY, one_line_error, read_csv, run_cli, set_args, toy_rows, write_csv

# Mixed lengths, one past max_length (32 in these tests), one word, one unknown to the toy vocabulary.
TEXTS = ["where is my parcel", "refund please", "forgot password", "stolen card", "hi",
         "track my order " * 20, "¿dónde está mi pedido?"]


def copy_model(src, tmp_path):
    return shutil.copytree(src, tmp_path / "model")


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


@pytest.fixture(scope="module", params=["prototype", "standard"])
def trained(request, tiny_model, tmp_path_factory):
    """A tiny model of each head, trained through the CLI once per module; tests change copies."""
    folder = tmp_path_factory.mktemp(f"run-{request.param}")
    data = write_csv(folder / "train.csv", toy_rows())
    settings = [f"model.name_or_path={tiny_model}", "model.max_length=32", "train.epochs=5",  # as fast_overrides,
                "train.batch_size=8", "train.learning_rate=0.003", "augment.enabled=false",  # shorter
                "data.validation_fraction=0", f"model.head={request.param}"]
    sets = set_args(settings)
    assert run_cli("train", "--train", data, "--output", folder / "run", *sets) == 0
    return folder / "run" / "model"


@pytest.fixture(scope="module")
def export_run(trained, tmp_path_factory):
    """A copy of ``trained`` exported with ``intentbal export``, and what the command printed."""
    model = shutil.copytree(trained, tmp_path_factory.mktemp("exported") / "model")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert run_cli("export", "--model", model) == 0
    return model, printed.getvalue()


@pytest.fixture(scope="module")
def exported(export_run):
    return export_run[0]


def test_export_writes_the_graph_and_its_check(export_run):
    import onnxruntime

    exported, printed = export_run
    assert "max abs logit difference" in printed and f"wrote {exported / ONNX_FILE}" in printed
    check = json.loads((exported / CHECK_FILE).read_text())
    assert 0 <= check["max_abs_diff"] <= check["atol"] == 1e-4
    assert check["onnxruntime"] == onnxruntime.__version__ and check["opset"] == 20
    assert check["file"] == ONNX_FILE and len(check["weights_sha256"]) == 64
    assert (exported / ONNX_FILE).stat().st_size > 0 and leftovers(exported) == []


def test_onnx_backend_gives_torch_results(exported):
    torch_clf = IntentClassifier.load(exported, backend="torch")
    onnx_clf = IntentClassifier.load(exported, backend="onnx")
    assert (torch_clf.backend, onnx_clf.backend) == ("torch", "onnx")
    assert onnx_clf.intents == torch_clf.intents and set(onnx_clf.intents) == set(TOY)
    expected, found = torch_clf.proba(TEXTS), onnx_clf.proba(TEXTS)
    assert found.shape == (len(TEXTS), len(TOY))
    np.testing.assert_allclose(found, expected, atol=1e-5)
    assert onnx_clf.predict(TEXTS)[0] == torch_clf.predict(TEXTS)[0]
    assert onnx_clf.truncated == torch_clf.truncated == 1
    for i, text in enumerate(TEXTS):  # the single-utterance path, against torch and against the batch
        single = onnx_clf.proba([text])
        np.testing.assert_allclose(single, torch_clf.proba([text]), atol=1e-5)
        np.testing.assert_allclose(single[0], found[i], atol=1e-5)
    assert onnx_clf.proba([]).shape == (0, len(TOY))


def test_auto_uses_onnx_only_for_an_exported_folder(exported, trained, monkeypatch):
    assert IntentClassifier.load(exported).backend == "onnx"
    assert IntentClassifier.load(trained).backend == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    assert IntentClassifier.load(exported).backend == "torch"


def test_onnx_backend_without_export_says_what_to_run(trained):
    with pytest.raises(IntentbalError, match=f"no {ONNX_FILE} and no {CHECK_FILE}; run 'intentbal export") as info:
        IntentClassifier.load(trained, backend="onnx")
    assert "\n" not in str(info.value)


def test_missing_onnxruntime_names_the_extra(trained, exported, tmp_path, monkeypatch):
    model = copy_model(trained, tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(IntentbalError, match=r"installed \(missing: onnxruntime\); pip install intentbal\[onnx\]"):
        export_onnx(model)
    with pytest.raises(IntentbalError, match=r"pip install intentbal\[onnx\]"):
        IntentClassifier.load(exported, backend="onnx")
    assert not (model / ONNX_FILE).exists() and not (model / CHECK_FILE).exists()


@pytest.mark.slow  # exports again
def test_a_failed_check_writes_nothing(trained, tmp_path, monkeypatch, capsys):
    import intentbal.inference.export as export

    def off_by_one(session):
        run = onnx_logits(session)
        return lambda input_ids, mask: run(input_ids, mask) + 1.0

    onnx_logits = export.onnx_logits
    monkeypatch.setattr(export, "onnx_logits", off_by_one)
    model = copy_model(trained, tmp_path)
    assert run_cli("export", "--model", model) == 2
    assert "expected ONNX Runtime logits within 0.0001 of PyTorch's, found a difference of 1" in one_line_error(capsys)
    assert not (model / ONNX_FILE).exists() and not (model / CHECK_FILE).exists() and leftovers(model) == []
    assert IntentClassifier.load(model).backend == "torch"


def test_an_interrupted_export_leaves_no_file(trained, tmp_path, monkeypatch):
    import intentbal.inference.export as export

    def killed(model, tokenizer, path, **kwargs):
        path.write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_export_graph", killed)
    model = copy_model(trained, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(model)
    assert not (model / ONNX_FILE).exists() and leftovers(model) == []


@pytest.mark.slow  # exports again
def test_the_check_file_comes_last_and_never_describes_another_graph(exported, tmp_path, monkeypatch):
    import intentbal.inference.export as export

    def full_disk(path, text):
        raise IntentbalError(f"{path}: could not write the output (No space left on device)")

    model = copy_model(exported, tmp_path)
    monkeypatch.setattr(export, "atomic_write_text", full_disk)
    with pytest.raises(IntentbalError, match="No space left"):
        export_onnx(model)
    assert (model / ONNX_FILE).exists() and not (model / CHECK_FILE).exists()  # a new graph, unchecked: unused
    assert IntentClassifier.load(model).backend == "torch"


def test_weights_changed_after_export_are_refused(exported, tmp_path):
    import torch

    from intentbal.model.loading import load_classifier

    model = copy_model(exported, tmp_path)
    tokenizer, net, _ = load_classifier(model)
    with torch.no_grad():
        net.classifier.bias += 1.0
    net.save_pretrained(model, safe_serialization=True)
    with pytest.raises(IntentbalError, match="weights changed since the export; run 'intentbal export"):
        IntentClassifier.load(model)
    assert IntentClassifier.load(model, backend="torch").backend == "torch"


def test_predict_command_uses_the_export(exported, trained, tmp_path):
    data = write_csv(tmp_path / "texts.csv", [(t, "track_order") for t in TEXTS])
    for name, model in (("onnx.csv", exported), ("torch.csv", trained)):
        assert run_cli("predict", "--model", model, "--input", data, "--output", tmp_path / name) == 0
    onnx_rows, torch_rows = (read_csv(tmp_path / n) for n in ("onnx.csv", "torch.csv"))
    assert [r["prediction"] for r in onnx_rows] == [r["prediction"] for r in torch_rows]
    # each file holds exactly its backend's answers (4 decimals); the backends agree to 1e-5 at full
    # precision (test_onnx_backend_gives_torch_results), which rounded values cannot show: 0.93515 vs 0.93514
    for rows, model, backend in ((onnx_rows, exported, "onnx"), (torch_rows, trained, "torch")):
        clf = IntentClassifier.load(model)
        predicted, confidence = clf.answer(clf.proba(TEXTS))
        assert clf.backend == backend
        assert [r["prediction"] for r in rows] == predicted
        assert [float(r["confidence"]) for r in rows] == [round(float(c), 4) for c in confidence]


def test_export_of_a_folder_that_is_not_a_model_is_one_line(tmp_path, capsys):
    assert run_cli("export", "--model", tmp_path / "nothing") == 2
    assert "expected a Hugging Face model folder" in one_line_error(capsys)


def test_import_loads_neither_torch_nor_onnxruntime():
    code = ("import sys, intentbal, intentbal.inference.export, intentbal.inference.backends, "
            "intentbal.inference.classifier, intentbal.model.loading; "
            "print('torch' in sys.modules, 'onnxruntime' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "False False", proc.stderr


@pytest.mark.parametrize("name, content, fragment", [
    (ONNX_FILE, b"half a graph", "expected a graph onnxruntime"),
    (CHECK_FILE, b"{not json", "expected the check of an export, found it unreadable"),
])
def test_damaged_export_files_are_one_line_errors(exported, tmp_path, name, content, fragment):
    model = copy_model(exported, tmp_path)
    (model / name).write_bytes(content)
    with pytest.raises(IntentbalError, match=fragment) as info:
        IntentClassifier.load(model)
    assert "\n" not in str(info.value) and "intentbal export" in str(info.value)


@pytest.mark.slow  # exports again
def test_export_to_another_file_writes_its_check_beside_it(trained, tmp_path):
    result = export_onnx(trained, output=tmp_path / "deploy" / "intents.onnx")
    assert result.path.is_file() and result.check_path == tmp_path / "deploy" / CHECK_FILE
    assert json.loads(result.check_path.read_text())["file"] == "intents.onnx"
    assert not (trained / ONNX_FILE).exists() and not (trained / CHECK_FILE).exists()
