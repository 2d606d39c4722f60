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
from typing import Any, NoReturn

from intentbal.errors import IntentbalError

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
    """One tqdm bar per stage on a terminal; a stage's note, such as the training loss, shows after
    its bar. Off a terminal (a log file, CI, nohup), a plain line every ``PLAIN_SECONDS`` instead."""

    PLAIN_SECONDS = 30.0

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}
        self.notes: dict[str, str] = {}
        self.plain = not sys.stderr.isatty()
        self.said: dict[str, float] = {}  # off a terminal: when each stage last said how far it got
        self.long: set[str] = set()  # stages that have said so at least once

    def __call__(self, stage: str, done: int, total: int, /) -> None:
        if self.plain:
            self._line(stage, done, total)
            return
        from tqdm.auto import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=_unit_of(stage),
                                          file=sys.stderr, dynamic_ncols=True, leave=False,
                                          postfix=self.notes.get(stage))
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def _line(self, stage: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        last = self.said.setdefault(stage, now)  # a stage's first call starts its clock
        # a line every PLAIN_SECONDS, and the last one of a stage that said something before
        if now - last >= self.PLAIN_SECONDS or (done >= total and stage in self.long):
            self.said[stage] = now
            self.long.add(stage)
            note = f", {self.notes[stage]}" if stage in self.notes else ""
            logging.getLogger("intentbal.progress").info(
                "%s: %d/%d %ss (%.0f%%)%s", stage, done, total, _unit_of(stage), 100 * done / max(total, 1), note)
        if done >= total:
            self.said.pop(stage, None)
            self.long.discard(stage)

    def note(self, stage: str, text: str) -> None:
        self.notes[stage] = text
        if stage in self.bars:
            self.bars[stage].set_postfix_str(text, refresh=False)  # shown with the next update


def _say(lines: Sequence[str]) -> None:
    print("\n".join(lines))


def _unit_of(stage: str) -> str:
    return "step" if stage.startswith("train") else "text" if stage == "predict" else "intent"


def _cmd_profile(args: argparse.Namespace) -> int:
    from intentbal.commands.profile import profile_data
    from intentbal.reports.console import profile_summary

    profile = profile_data(_config(args, **{"data.train": args.data, "data.eval": args.eval}), output=args.output,
                           overwrite=args.overwrite)
    _say(profile_summary(profile, output=args.output))
    return 0


def _cmd_augment(args: argparse.Namespace) -> int:
    from intentbal.commands.augment import augment_file
    from intentbal.reports.console import augment_summary

    result = augment_file(_config(args, **{"data.train": args.data}), output=args.output, overwrite=args.overwrite,
                          progress=_progress())
    _say(augment_summary(result, output=args.output))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from intentbal.commands.train import train_run
    from intentbal.reports.console import train_summary
    from intentbal.training.distributed import is_main

    config = _config(args, **{"data.train": args.train, "data.eval": args.eval,
                              "data.validation": args.validation, "data.unlabeled": args.unlabeled,
                              "output_dir": args.output})
    run = train_run(config, progress=_progress(), resume=args.resume)
    if is_main():  # under torchrun, rank 0 reports
        _say(train_summary(run))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from intentbal.commands.evaluate import evaluate_model
    from intentbal.reports.console import evaluate_summary

    config = _config(args, **{"data.validation": args.validation})
    report = evaluate_model(config, model_dir=args.model, data=args.data, output=args.output, backend=args.backend,
                            update_card=args.update_card, progress=_progress())
    _say(evaluate_summary(report, wrote=[args.output, *([args.model / "README.md"] if args.update_card else [])]))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from intentbal.commands.audit import audit_model
    from intentbal.reports.console import audit_summary

    config = _config(args, **{"data.validation": args.validation})
    report, result = audit_model(config, model_dir=args.model, data=args.data, min_recall=args.min_recall,
                                 min_tail_recall=args.min_tail_recall, baseline=args.baseline, output=args.output)
    _say(audit_summary(report, result, min_recall=args.min_recall, baseline=args.baseline))
    return 0 if result.passed else 1


def _cmd_compare(args: argparse.Namespace) -> int:
    from intentbal.commands.audit import compare_files
    from intentbal.reports.console import compare_summary

    _say(compare_summary(compare_files(args.a, args.b), a=args.a, b=args.b))
    return 0


def _cmd_cv(args: argparse.Namespace) -> int:
    from intentbal.commands.cv import cross_validate
    from intentbal.reports.console import cv_summary

    config = _config(args, **{"data.train": args.train, "data.unlabeled": args.unlabeled, "output_dir": args.output})
    report, models = cross_validate(config, folds=args.folds, repeats=args.repeats, progress=_progress())
    _say(cv_summary(report, models=models, folds=args.folds, repeats=args.repeats, output=config.output_dir))
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
    from intentbal.reports.console import suggest_summary

    result = suggest_file(_config(args), model_dir=args.model, unlabeled=args.unlabeled, output=args.output,
                          report=args.report, intents=args.intents, per_intent=args.per_intent, margin=args.margin,
                          backend=args.backend, overwrite=args.overwrite, progress=_progress())
    _say(suggest_summary(result, output=args.output))
    return 0


def _intent_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected intent names separated by commas, found {text!r}")
    return names


def _cmd_export(args: argparse.Namespace) -> int:
    from intentbal.inference.export import export_onnx
    from intentbal.reports.console import export_summary

    _say(export_summary(export_onnx(args.model, output=args.output, atol=args.atol, config=_config(args).model)))
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
