"""``intentbal audit`` and ``intentbal compare``: judge a model's per-intent recall, alone or
against a baseline report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from intentbal.commands.evaluate import evaluate_model
from intentbal.config import Config
from intentbal.data.inputs import few, load_data
from intentbal.errors import IntentbalError
from intentbal.evaluation.gate import AuditResult, Change, audit_report, compare_reports, comparison_scope
from intentbal.evaluation.metrics import Report
from intentbal.io.folders import check_output_dir


def audit_model(
    config: Config,
    *,
    model_dir: Path,
    data: Path,
    min_recall: float,
    min_tail_recall: float | None = None,
    baseline: Path | None = None,
    output: Path | None = None,
) -> tuple[Report, AuditResult]:
    """Evaluate with ``min_recall`` as the threshold and judge the result (see :mod:`intentbal.evaluation.gate`).

    The report files go to ``output`` when given.
    """
    if output is not None:  # the baseline is an input too: its folder is never replaced
        check_output_dir(output, kind="evaluate", inputs=[model_dir, data, config.data.validation, baseline])
    old = read_report(baseline) if baseline is not None else None
    if old is not None:  # refused before evaluating: the intents it will evaluate are the eval data's
        evaluated = dict.fromkeys(i for i in load_data(config, data, "eval").intents if i != config.data.oos_label)
        placeholder = {"intents": [{"intent": i, "recall": 1.0} for i in evaluated]}  # any recall: only presence counts
        _check_comparable(old, placeholder, f"baseline {baseline}", str(data))
    evaluate = config.evaluate.model_copy(update={"recall_threshold": min_recall})
    config = config.model_copy(update={"evaluate": evaluate})
    if output is None:
        with tempfile.TemporaryDirectory() as tmp:
            report = evaluate_model(config, model_dir=model_dir, data=data, output=Path(tmp) / "report")
    else:
        report = evaluate_model(config, model_dir=model_dir, data=data, output=output)
    return report, audit_report(report, min_tail_recall=min_tail_recall, baseline=old)


def compare_files(a: Path, b: Path) -> list[Change]:
    """Per-intent recall changes from report file ``a`` to report file ``b``; refused when no
    intent is evaluated in both."""
    return _check_comparable(read_report(a), read_report(b), str(a), str(b))


def read_report(path: Path) -> dict:
    """A ``report.json`` written by intentbal, checked for the fields the audit needs."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IntentbalError(f"{path}: report not found; pass OUTPUT/report.json of an earlier run") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntentbalError(f"{path}: expected an intentbal report.json, found unreadable JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("intents"), list) or "summary" not in doc:
        raise IntentbalError(
            f"{path}: expected an intentbal report.json with 'summary' and 'intents', found other JSON")
    return doc


def _check_comparable(a: dict, b: dict, name_a: str, name_b: str) -> list[Change]:
    changes = compare_reports(a, b)
    scope = comparison_scope(changes)
    if not scope.shared:
        raise IntentbalError(
            f"{name_b}: expected intents evaluated in {name_a} too, found none in common "
            f"({name_a}: {few(set(scope.only_a))}; {name_b}: {few(set(scope.only_b))}); "
            "compare reports of models for the same intents"
        )
    return changes
