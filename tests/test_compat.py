"""Model folders saved by earlier versions of intentbal still load and predict the same."""

from __future__ import annotations

import json

import numpy as np

from conftest import ROOT, run_cli, write_csv

OLD = ROOT / "tests" / "fixtures" / "model-0.1.0"  # saved by intentbal 0.1.0 (the tiny model, toy data)
EXPECTED = json.loads((ROOT / "tests" / "fixtures" / "model-0.1.0-expected.json").read_text())


def test_a_folder_saved_by_0_1_0_predicts_what_it_predicted_then():
    from intentbal import IntentClassifier

    clf = IntentClassifier.load(OLD)
    assert clf.intents == EXPECTED["intents"]
    probs = clf.proba(EXPECTED["texts"])
    np.testing.assert_allclose(probs, np.array(EXPECTED["probabilities"]), rtol=0, atol=1e-6)
    assert clf.predict(EXPECTED["texts"])[0] == EXPECTED["predicted"]
    assert clf.fallback_threshold == 0.3 and clf.max_length == 64


def test_the_commands_read_a_folder_saved_by_0_1_0(tmp_path):
    texts = write_csv(tmp_path / "t.csv", [(t, i) for t, i in zip(EXPECTED["texts"][:3],
                                                                 ["track_order", "refund", "fraud"])])
    assert run_cli("predict", "--model", OLD, "--input", texts, "--output", tmp_path / "p.csv") == 0
    assert run_cli("evaluate", "--model", OLD, "--data", texts, "--output", tmp_path / "ev",
                   "--set", "evaluate.plots=false") == 0
    assert (tmp_path / "ev" / "report.json").is_file()
