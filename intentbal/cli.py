"""The ``intentbal`` command: parse arguments, call one library function, print the result.

User mistakes print one line on stderr and exit with status 2 (``--debug`` shows the
traceback); nothing else here decides anything.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from intentbal.errors import IntentbalError

if TYPE_CHECKING:
    from intentbal.commands.train import TrainRun


EXIT_USAGE = 2
BACKENDS = ("auto", "torch", "onnx")
UNLABELED_HELP = "unlabeled utterances (chat logs) for self-training (data.unlabeled)"
BACKEND_HELP = "torch, onnx (needs 'intentbal export'), or auto: onnx when the model folder is exported"
OVERWRITE_HELP = "replace --output if it exists (never an input file)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"intentbal: error: {message}; see '{self.prog} --help'\n")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so every output being written is cleaned up as for Ctrl-C."""


def _terminate(_signum: int, _frame: Any) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    handler = _log_to_stderr(args)
    try:
        return int(args.run(args) or 0)
    except IntentbalError as exc:
        if args.debug:
            raise
        print(f"intentbal: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Terminated:
        print("intentbal: terminated (SIGTERM); no output was left half-written", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("intentbal: interrupted; no output was left half-written", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        logging.getLogger("intentbal").removeHandler(handler)
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


class _Lines(logging.Formatter):
    """A warning as ``intentbal: warning: ...``; other records as their message."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"intentbal: {record.levelname.lower()}: {text}" if record.levelno >= logging.WARNING else text


def _log_to_stderr(args: argparse.Namespace) -> logging.Handler:
    """The library's log records on stderr, at the level ``--quiet`` / ``--verbose`` ask for."""
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines())
    logger = logging.getLogger("intentbal")
    logger.setLevel(level)
    logger.addHandler(handler)
    return handler


def _config(args: argparse.Namespace, **paths: Path | None) -> Any:
    from intentbal.config import load_config

    given = {key: str(value) for key, value in paths.items() if value is not None}
    return load_config(args.config, overrides=args.set, values=given)


def _progress() -> _Bars:
    return _Bars()


class _Bars:
    """One tqdm bar per stage on stderr (none when stderr is not a terminal); a stage's note,
    such as the training loss, shows after its bar."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}
        self.notes: dict[str, str] = {}

    def __call__(self, stage: str, done: int, total: int, /) -> None:
        from tqdm.auto import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            unit = "step" if stage.startswith("train") else "text" if stage == "predict" else "intent"
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=unit,
                                          file=sys.stderr, dynamic_ncols=True, leave=False, disable=None,
                                          postfix=self.notes.get(stage))
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def note(self, stage: str, text: str) -> None:
        self.notes[stage] = text
        if stage in self.bars:
            self.bars[stage].set_postfix_str(text, refresh=False)  # shown with the next update


def _cmd_profile(args: argparse.Namespace) -> int:
    from intentbal.commands.profile import profile_data
    from intentbal.reports.text import profile_lines, profile_table

    profile = profile_data(_config(args, **{"data.train": args.data, "data.eval": args.eval}), output=args.output,
                           overwrite=args.overwrite)
    print(profile_table(profile))
    print("\n".join(profile_lines(profile)))
    print(f"wrote {args.output}")
    return 0


def _cmd_augment(args: argparse.Namespace) -> int:
    from intentbal.commands.augment import augment_file

    result = augment_file(_config(args, **{"data.train": args.data}), output=args.output, overwrite=args.overwrite,
                          progress=_progress())
    by_tool: dict[str, int] = {}
    for row in result.synthetic:
        by_tool[row.augmenter] = by_tool.get(row.augmenter, 0) + 1
    tools = ", ".join(f"{k} {v}" for k, v in sorted(by_tool.items())) or "none needed"
    print(f"target {result.target} per intent: {len(result.synthetic)} synthetic rows ({tools})")
    if result.protected:
        print("words the augmenters left intact (augment.protect_words):")
        for intent, words in result.protected.items():
            print(f"  {intent}: {', '.join(words) or '-'}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"wrote {args.output}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from intentbal.commands.train import train_run
    from intentbal.evaluation.fallback import describe_threshold
    from intentbal.listing import listing
    from intentbal.reports.text import profile_lines, report_table, summary_lines
    from intentbal.training.distributed import is_main

    config = _config(args, **{"data.train": args.train, "data.eval": args.eval,
                              "data.validation": args.validation, "data.unlabeled": args.unlabeled,
                              "output_dir": args.output})
    run = train_run(config, progress=_progress(), resume=args.resume)
    if not is_main():  # under torchrun or accelerate, rank 0 reports
        return 0
    m = run.metrics
    fits = ((" of the evaluated model", m.evaluated), (" of the refit" if run.refit else "", m.shipped))
    resumed = [f"step {f.resumed_from_step}{name}" for name, f in fits if f is not None and f.resumed_from_step]
    if resumed:
        print(f"resumed from the checkpoint at {' and '.join(resumed)}")
    print("\n".join(profile_lines(run.profile)))
    synthetic = run.evaluated.rows.made_by("augment")
    if synthetic:
        print(f"augmented {len(synthetic)} rows for the rare intents")
    if run.adjustment.tau or run.adjustment.chosen_on != "given":
        reported = run.reported_adjustment
        other = (f"; {reported.tau:g} for the model reported on"
                 if reported is not None and reported.tau != run.adjustment.tau else "")
        print(f"logit adjustment tau {run.adjustment.tau:g} ({run.adjustment.describe()}{other})")
    if run.pseudo:
        borrowed = listing([f"{i} {n}" for i, n in sorted(run.pseudo.items(), key=lambda x: -x[1])])
        print(f"self-training: {sum(run.pseudo.values())} unlabeled utterances labelled by the teacher joined "
              f"the shipped model's training ({borrowed})")
    if run.fallback is not None:
        print(f"fallback threshold {run.fallback.threshold:.2f} saved with the model "
              f"({describe_threshold(run.fallback.chosen_on)}): predict answers {run.fallback.intent!r} under it")
    print(_trained_line(run))
    if run.report is not None:
        print(report_table(run.report))
        print("\n".join(summary_lines(run.report)))
    for warning in run.warnings:
        print(f"warning: {warning}")
    print(f"wrote {run.output_dir}")
    return 0


def _trained_line(run: TrainRun) -> str:
    s = run.metrics.shipped
    trained = f"{s.steps} steps in {s.train_seconds:.1f} s ({s.train_samples_per_second:.1f} samples/s)"
    e = run.metrics.evaluated
    if run.refit is None or e is None:
        return f"trained {trained}"
    return (f"trained {e.steps} steps in {e.train_seconds:.1f} s without the {run.refit.held_out_rows} held-out rows "
            f"(the model reported on), then refit on all {run.refit.rows} rows: {trained}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from intentbal.commands.evaluate import evaluate_model
    from intentbal.reports.text import report_table, summary_lines

    config = _config(args, **{"data.validation": args.validation})
    report = evaluate_model(config, model_dir=args.model, data=args.data, output=args.output, backend=args.backend,
                            update_card=args.update_card, progress=_progress())
    print(report_table(report))
    print("\n".join(summary_lines(report)))
    print(f"wrote {args.output}" + (f" and {args.model / 'README.md'}" if args.update_card else ""))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from intentbal.commands.audit import audit_model
    from intentbal.listing import listing
    from intentbal.reports.text import report_table, scope_line, summary_lines

    config = _config(args, **{"data.validation": args.validation})
    report, result = audit_model(config, model_dir=args.model, data=args.data, min_recall=args.min_recall,
                                 min_tail_recall=args.min_tail_recall, baseline=args.baseline, output=args.output)
    print(report_table(report))
    print("\n".join(summary_lines(report)))
    if args.baseline is not None:
        print(f"compared with baseline {args.baseline}: "
              f"{scope_line(result.compared, a='the baseline', b='this report')}")
    for change in result.regressions:
        print(f"regression: {change.intent} {change.recall_a:.3f} -> {change.recall_b:.3f} (p={change.p_lower:.3g})")
    if result.at_risk:
        print(f"at risk (interval straddles {args.min_recall:.2f}): {listing(result.at_risk, see='report.json')}")
    if result.insufficient_evidence:
        print(f"not judged (too few eval examples): {listing(result.insufficient_evidence, see='report.json')}")
    if result.passed:
        print(f"AUDIT PASSED: no intent's recall interval lies wholly under {args.min_recall:.2f}")
        return 0
    print("AUDIT FAILED: " + "; ".join(result.reasons))
    return 1


def _cmd_compare(args: argparse.Namespace) -> int:
    from intentbal.commands.audit import compare_files
    from intentbal.listing import listing
    from intentbal.reports.text import compare_table, scope_line

    changes = compare_files(args.a, args.b)
    print(compare_table(changes))
    worse = [c.intent for c in changes if c.verdict() == "worse"]
    better = [c.intent for c in changes if c.verdict() == "better"]
    print(f"compared A {args.a} and B {args.b}: {scope_line(changes, a='A', b='B')}")
    print(f"significantly worse in B: {listing(worse, see='the table above') or 'none'}; "
          f"better: {listing(better, see='the table above') or 'none'} (one-sided two-proportion z-test, p < 0.05)")
    return 0


def _cmd_cv(args: argparse.Namespace) -> int:
    from intentbal.commands.cv import cross_validate
    from intentbal.reports.text import report_table, summary_lines

    config = _config(args, **{"data.train": args.train, "data.unlabeled": args.unlabeled, "output_dir": args.output})
    report, models = cross_validate(config, folds=args.folds, repeats=args.repeats, progress=_progress())
    print(report_table(report))
    print("\n".join(summary_lines(report)))
    print(f"pooled over {models} models ({args.folds} folds x {args.repeats} repeat(s)); wrote {config.output_dir}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from intentbal.commands.predict import predict_file

    n = predict_file(_config(args), model_dir=args.model, input_path=args.input, output=args.output,
                     backend=args.backend, overwrite=args.overwrite, top_k=args.top_k,
                     fallback_threshold=args.fallback_threshold, progress=_progress())
    print(f"wrote {n} predictions to {args.output}")
    return 0


def _cmd_suggest(args: argparse.Namespace) -> int:
    from intentbal.commands.suggest import suggest_file
    from intentbal.evaluation.suggestions import LIKELY
    from intentbal.listing import listing

    result = suggest_file(_config(args), model_dir=args.model, unlabeled=args.unlabeled, output=args.output,
                          report=args.report, intents=args.intents, per_intent=args.per_intent, margin=args.margin,
                          backend=args.backend, overwrite=args.overwrite, progress=_progress())
    chosen, pool = result.selection, result.pool
    by_reason: dict[str, int] = {}
    for reason in chosen.reasons.values():
        by_reason[reason] = by_reason.get(reason, 0) + 1
    reasons = ", ".join(f"{n} {r}" for r, n in by_reason.items())
    print(f"{len(chosen.reasons)} intent(s) selected by {chosen.source}" + (f" ({reasons})" if reasons else "")
          + (f": {listing(list(chosen.reasons), see=str(args.output))}" if chosen.reasons else ""))
    if chosen.unknown:
        print(f"left out, not intents of the model: {listing(chosen.unknown)}")
    likely = sum(s.kind == LIKELY for s in result.suggestions)
    print(f"{len(pool.texts)} new texts of {result.pool_rows} rows (dropped: {pool.duplicates} repeat(s), "
          f"{pool.in_training} training text(s)): {likely} likely and {len(result.suggestions) - likely} near miss(es)")
    if result.truncated:
        print(f"warning: {result.truncated} text(s) longer than the model's max_length were truncated")
    print(f"wrote {len(result.suggestions)} rows to {args.output}; fill confirmed_intent to keep a row")
    return 0


def _intent_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected intent names separated by commas, found {text!r}")
    return names


def _cmd_export(args: argparse.Namespace) -> int:
    from intentbal.inference.export import export_onnx

    result = export_onnx(args.model, output=args.output, atol=args.atol, config=_config(args).model)
    print(f"ONNX Runtime vs PyTorch: max abs logit difference {result.max_abs_diff:.2g} over "
          f"{result.texts_checked} texts, batched and single (tolerance {result.atol:g})")
    print(f"wrote {result.path} and {result.check_path}")
    return 0


def _unit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, found {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, found {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, found {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from intentbal import __version__

    parser = _Parser(prog="intentbal", description="Train and audit intent classifiers that keep rare intents.")
    parser.add_argument("--version", action="version", version=f"intentbal {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--config", type=Path, help="YAML config (see configs/default.yaml)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    common.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("--quiet", "-q", action="store_true", help="log warnings and errors only")
    loudness.add_argument("--verbose", "-v", action="store_true", help="log more detail (debug level)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("profile", parents=[common], help="per-intent counts, tiers and data warnings")
    p.add_argument("data", type=Path, help="training data")
    p.add_argument("--eval", type=Path, help="eval data, to check its intents against training")
    p.add_argument("--output", type=Path, default=Path("profile.json"), help="where to write the profile (.json)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.set_defaults(run=_cmd_profile)

    p = sub.add_parser("augment", parents=[common], help="oversample rare intents with nlpaug")
    p.add_argument("data", type=Path, help="training data")
    p.add_argument("--output", type=Path, required=True,
                   help="augmented data: .csv, .jsonl, .parquet, or Rasa NLU .yml/.yaml")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.set_defaults(run=_cmd_augment)

    p = sub.add_parser("train", parents=[common], help="profile, augment, fine-tune and evaluate")
    p.add_argument("--train", type=Path, help="training data (data.train)")
    p.add_argument("--eval", type=Path, help="eval data (data.eval); without it a split is held out")
    p.add_argument("--validation", type=Path, help="validation data (data.validation) for choices like tau and the "
                   "fallback threshold; the shipped model is then refit on it too (train.refit=train: never)")
    p.add_argument("--unlabeled", type=Path, help=UNLABELED_HELP)
    p.add_argument("--output", type=Path, help="output folder (output_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of this output")
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("evaluate", parents=[common], help="per-intent report of a trained model")
    p.add_argument("--model", type=Path, required=True, help="model folder (OUTPUT/model)")
    p.add_argument("--data", type=Path, required=True, help="labelled eval data")
    p.add_argument("--validation", type=Path, help="validation data to choose the fallback threshold on")
    p.add_argument("--output", type=Path, required=True, help="folder for the report files")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.add_argument("--update-card", action="store_true",
                   help="also rewrite the model card MODEL/README.md from this evaluation")
    p.set_defaults(run=_cmd_evaluate)

    p = sub.add_parser("audit", parents=[common], help="gate: exit 1 when an intent fails, 0 when all pass")
    p.add_argument("--model", type=Path, required=True, help="model folder (OUTPUT/model)")
    p.add_argument("--data", type=Path, required=True, help="labelled eval data")
    p.add_argument("--min-recall", type=_unit, default=0.6, help="fail intents whose recall interval lies under it")
    p.add_argument("--min-tail-recall", type=_unit, help="fail when the tail recall is under it")
    p.add_argument("--baseline", type=Path, help="report.json of an older model: fail on significant regressions")
    p.add_argument("--validation", type=Path, help="validation data to choose the fallback threshold on")
    p.add_argument("--output", type=Path, help="also write the report files here")
    p.set_defaults(run=_cmd_audit)

    p = sub.add_parser("compare", parents=[common], help="per-intent recall of two report.json files")
    p.add_argument("a", type=Path, help="report.json (or its folder) of the first model")
    p.add_argument("b", type=Path, help="report.json (or its folder) of the second model")
    p.set_defaults(run=_cmd_compare)

    p = sub.add_parser("cv", parents=[common], help="repeated stratified K-fold that keeps rare intents")
    p.add_argument("--train", type=Path, help="labelled data (data.train)")
    p.add_argument("--folds", type=int, default=5, help="folds (K), at least 2")
    p.add_argument("--repeats", type=int, default=1, help="repetitions with other fold assignments, at least 1")
    p.add_argument("--unlabeled", type=Path, help=UNLABELED_HELP)
    p.add_argument("--output", type=Path, help="output folder (output_dir)")
    p.set_defaults(run=_cmd_cv)

    p = sub.add_parser("predict", parents=[common], help="predict intents for a file of texts")
    p.add_argument("--model", type=Path, required=True, help="model folder (OUTPUT/model)")
    p.add_argument("--input", type=Path, required=True, help="texts, with or without an intent column")
    p.add_argument("--output", type=Path, required=True,
                   help="text,prediction,confidence as .csv, .jsonl or .parquet (the suffix picks the format)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.add_argument("--top-k", type=_positive, metavar="N",
                   help="also rank the N most likely intents with their confidences")
    p.add_argument("--fallback-threshold", type=_unit, metavar="X",
                   help="answer the fallback intent under this confidence (overrides the one saved with the model)")
    p.set_defaults(run=_cmd_predict)

    p = sub.add_parser("suggest", parents=[common], help="what to label next: unlabelled texts for weak intents")
    p.add_argument("--model", type=Path, required=True, help="model folder (OUTPUT/model)")
    p.add_argument("--unlabeled", type=Path, required=True,
                   help="unlabelled texts: .csv, .jsonl or .parquet with the text column, or .txt, one per line")
    p.add_argument("--output", type=Path, required=True,
                   help="the suggestions as .csv, .jsonl or .parquet (the suffix picks the format)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    chosen = p.add_mutually_exclusive_group()
    chosen.add_argument("--report", type=Path,
                        help="report.json choosing the intents (default: OUTPUT/report.json beside the model)")
    chosen.add_argument("--intents", type=_intent_names, metavar="A,B",
                        help="suggest for these intents instead of those the report or the training counts choose")
    p.add_argument("--per-intent", type=_positive, default=20, metavar="N",
                   help="at most N likely texts and N near misses per intent (default %(default)s)")
    p.add_argument("--margin", type=_unit, default=0.2, metavar="X",
                   help="near miss: the intent comes second, at most X under the top probability (default %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.set_defaults(run=_cmd_suggest)

    p = sub.add_parser("export", parents=[common], help="ONNX export for faster CPU prediction, checked against torch")
    p.add_argument("--model", type=Path, required=True, help="model folder (OUTPUT/model)")
    p.add_argument("--output", type=Path, help="where to write the graph (default MODEL/model.onnx)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest logit difference from PyTorch accepted")
    p.set_defaults(run=_cmd_export)
    return parser


if __name__ == "__main__":
    sys.exit(main())
