"""The model card: ``README.md`` of a saved model folder, in the Hugging Face model-card format.

:func:`model_card` is a pure function of what the folder's ``intentbal.json`` holds (training
counts, the recipe) and of a report, so ``intentbal train`` and ``intentbal evaluate
--update-card`` write the same card from the same facts.
"""

from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any

import yaml

from intentbal.data.profiling import tier_of
from intentbal.evaluation.metrics import Report
from intentbal.model.adjustment import describe_tau
from intentbal.reports.text import report_table, summary_lines

if TYPE_CHECKING:
    from intentbal.config import Config
    from intentbal.model.record import ModelRecord


TAGS = ["intentbal", "text-classification", "intent-classification", "long-tail"]
HEADS = {
    "prototype": "prototype: mean-pooled sentence embedding scored by cosine against one vector per intent",
    "standard": "standard: the model's own sequence-classification head",
}


def card_name(model_dir: Path) -> str:
    """The model's name in its card: the run folder's name for ``RUN/model``, else the folder's own."""
    folder = Path(model_dir).absolute()
    return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name


def model_card(
    *,
    name: str,
    record: ModelRecord,
    report: Report | None,
    eval_name: str | None,
    rare_max: int,
    frequent_min: int,
) -> str:
    """The card of a model folder: YAML front matter, then the training profile, the per-intent
    evaluation (rarest intents first, recall with its 95% interval), the recipe, how to load the
    model, and its limitations.

    ``record`` is the folder's ``intentbal.json``; ``report`` the evaluation on ``eval_name`` (the data's
    file name), or None when there was none.
    """
    r = record.settings()
    counts = record.train_counts
    head = r.get("head", "prototype")
    parts = [
        "---", _front_matter(name, r, report, eval_name).rstrip(), "---", "",
        f"# {name}", "",
        f"An intent classifier ({len(counts)} intents) trained with intentbal {record.intentbal_version} "
        f"on long-tailed data"
        + (f", fine-tuned from [{r['base_model']}](https://huggingface.co/{r['base_model']})" if r.get("base_model")
           else "")
        + ". Every intent's recall is reported, the rarest intents first, with a 95% interval: a model that "
        "forgets its rare intents cannot hide behind its accuracy.", "",
        *_profile_section(counts, record.augmented_counts or counts, report, rare_max, frequent_min,
                          refit=record.refit),
        *_descriptions_section(record.descriptions),
        *_evaluation_section(report, eval_name),
        *_recipe_section(r, record),
        *_usage_section(head, record.max_length),
        *_limitations_section(report, eval_name, record.max_length),
    ]
    return "\n".join(parts).rstrip() + "\n"


def _front_matter(name: str, r: dict[str, Any], report: Report | None, eval_name: str | None) -> str:
    front: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "text-classification"}
    if r.get("base_model"):
        front["base_model"] = r["base_model"]
    front["tags"] = TAGS + ([f"{r['head']}-head"] if r.get("head") else [])
    if report is not None:
        s = report.summary
        metrics = [
            {"type": "accuracy", "value": round(s.accuracy, 4), "name": "accuracy"},
            {"type": "f1", "value": round(s.macro_f1, 4), "name": "macro-F1", "args": {"average": "macro"}},
            {"type": "recall", "value": round(s.macro_recall, 4), "name": "macro recall",
             "args": {"average": "macro"}},
            {"type": "recall", "value": round(s.tail_recall, 4),
             "name": f"tail recall ({len(s.tail_intents)} intents with fewest training examples)"},
            {"type": "recall", "value": round(s.worst_recall, 4), "name": f"worst recall ({s.worst_intent})"},
        ]
        front["model-index"] = [{"name": name, "results": [{
            "task": {"type": "text-classification", "name": "Intent classification"},
            "dataset": {"name": eval_name or "eval", "type": "custom"},
            "metrics": metrics,
        }]}]
    return yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)


def _profile_section(
    counts: dict[str, int], augmented: dict[str, int], report: Report | None, rare_max: int, frequent_min: int,
    *, refit: bool = False,
) -> list[str]:
    """The shipped model's training rows; with a refit, which model the evaluation's counts belong to."""
    if not counts:
        return ["## Training data", "", "Not recorded with this model.", ""]
    values = list(counts.values())
    tiers = [tier_of(c, rare_max=rare_max, frequent_min=frequent_min) for c in values]
    lines = [
        "## Training data", "",
        f"This model trained on {sum(values)} examples of {len(counts)} intents, {min(values)} to {max(values)} "
        "per intent "
        f"(median {median(values):g}), imbalance ratio {max(values) / min(values):.1f} (most / fewest). "
        f"Tiers: {tiers.count('rare')} rare (at most {rare_max} examples), {tiers.count('medium')} medium, "
        f"{tiers.count('frequent')} frequent (at least {frequent_min}).",
    ]
    added = sum(augmented.values()) - sum(values)
    if added:
        lines.append(f"Augmentation added {added} rows to them before training.")
    if refit and report is not None:
        lines.append("It is a refit on every labelled row: the evaluation below is of the same recipe trained "
                     "without the held-out rows, and its `train` and `augmented` columns count that model's rows.")
    lines.append("")
    if report is None:  # otherwise the evaluation table carries the counts
        lines += ["| intent | tier | train | augmented |", "| --- | --- | --- | --- |"]
        for intent, count in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])):
            tier = tier_of(count, rare_max=rare_max, frequent_min=frequent_min)
            lines.append(f"| {intent} | {tier} | {count} | {augmented.get(intent, count)} |")
        lines.append("")
    return lines


def _descriptions_section(descriptions: dict[str, str]) -> list[str]:
    if not descriptions:
        return []
    rows = [f"| {intent} | {text.replace('|', '/')} |" for intent, text in sorted(descriptions.items())]
    return ["## Intent descriptions", "", "| intent | description |", "| --- | --- |", *rows, ""]


def _evaluation_section(report: Report | None, eval_name: str | None) -> list[str]:
    if report is None:
        return ["## Evaluation", "", "None: no eval data was given.", ""]
    s = report.summary
    return [
        f"## Evaluation on `{eval_name}`", "",
        *[f"- {line}" for line in summary_lines(report)], "",
        f"Intents rarest first; recall with its 95% Wilson interval. Status against recall "
        f"{s.recall_threshold:.2f}: `FAIL` when the whole interval lies under it, `AT RISK` when it straddles "
        f"it, `too few` under {s.min_support} eval examples, `n/a` without any.", "",
        report_table(report, markdown=True), "",
    ]


def _self_trained(settings: dict[str, Any], borrowed: int) -> str:
    """The self-training row: what was borrowed and how long the student trained (a record written
    before ``self_training.steps`` existed trained it on every row for every epoch)."""
    steps = ("as many steps as its teacher (fewer passes over more rows)" if settings.get("steps", "all") == "labelled"
             else "every epoch over every row")
    teacher = f"a teacher fine-tuned from {settings['teacher']}" if settings.get("teacher") else "teacher"
    return (f"{borrowed} unlabeled utterances borrowed ({teacher} confidence at least {settings['threshold']:g}); "
            f"the student took {steps}")


def _recipe_section(r: dict[str, Any], record: ModelRecord) -> list[str]:
    adjustment = record.logit_adjustment
    rows = []
    if "base_model" in r:
        rows.append(("base model", r["base_model"] or "a local model folder"))
    if "head" in r:
        rows.append(("head", HEADS.get(r["head"], r["head"])))
    rows.append(("max length", f"{record.max_length} tokens (longer texts are cut)"))
    if "weighting" in r:
        rows.append(("class weighting of the loss", r["weighting"]))
    if adjustment is not None:
        rows.append(("logit adjustment tau", f"{adjustment.tau:g} ({describe_tau(adjustment.chosen_on)})"))
    if r.get("loss_adjustment"):
        rows.append(("logit-adjusted loss tau", f"{r['loss_adjustment']:g}"))
    for key, label in (("epochs", "epochs"), ("learning_rate", "learning rate"), ("batch_size", "batch size")):
        if key in r:
            rows.append((label, f"{r[key]:g}"))
    if record.refit and r.get("refit_epochs"):
        n = r["refit_epochs"]
        rows.append(("refit", f"continued from the model the evaluation measured: {n:g} more "
                     f"{'epoch' if n == 1 else 'epochs'} over every labelled row"))
    if "augmentation" in r:
        aug = r["augmentation"]
        target = (f"{aug['target_count']} examples" if aug and aug["target_count"]
                  else f"{aug['target_fraction']:g} times the median count" if aug else "")
        rows.append(("augmentation", f"{', '.join(aug['augmenters'])}, rare intents raised to {target}" if aug
                     else "off"))
    if r.get("max_per_intent"):
        rows.append(("undersampling", f"at most {r['max_per_intent']} examples per intent"))
    if r.get("embedding_smote"):
        rows.append(("embedding SMOTE", "on"))
    if r.get("trainable_layers") is not None:
        rows.append(("trained layers", f"the encoder's top {r['trainable_layers']} (all of them if it has no more) "
                     "and the head"))
    if r.get("batches") == "balanced":
        rows.append(("batches", f"class-balanced, {r['intent_examples']} examples per intent"))
    if r.get("contrastive_weight"):
        rows.append(("balanced contrastive term", f"weight {r['contrastive_weight']:g}"))
    if r.get("contrastive_epochs"):
        rows.append(("contrastive stage", f"{r['contrastive_epochs']:g} passes of balanced batches before the head, "
                     f"temperature {r['contrastive_temperature']:g}"))
    if r.get("neighbour_margin"):
        rows.append(("confusable-neighbour margin", f"{r['neighbour_margin']:g} logits against each intent's "
                     f"{r['neighbours']} nearest intents"))
    if r.get("description_weight") or r.get("description_rows"):
        rows.append(("intent descriptions", _described(r)))
    if r.get("self_training") and record.pseudo_counts:
        rows.append(("self-training", _self_trained(r["self_training"], sum(record.pseudo_counts.values()))))
    if r.get("soup", 1) > 1:
        rows.append(("model soup", f"{r['soup']} fine-tunes averaged"))
    if "seed" in r:
        rows.append(("seed", str(r["seed"])))
    if not rows:
        return []
    return ["## Recipe", "", "| setting | value |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], ""]


def _described(r: dict[str, Any]) -> str:
    used = [f"each starting vector counts its description as {r['description_weight']:g} examples"
            if r.get("description_weight") else "",
            f"each description trains as a row weighing {r['description_rows']:g}" if r.get("description_rows") else ""]
    names = "; intent names made of words describe the other intents" if r.get("intent_names") == "auto" else ""
    return "; ".join(u for u in used if u) + names


def _usage_section(head: str, max_length: int | None) -> list[str]:
    cut = f"; `truncation=True` cuts texts at {max_length} tokens, as intentbal does" if max_length else ""
    if head == "prototype":
        hf = [
            f"With transformers, once `intentbal.register()` has taught it the `intentbal-prototype` "
            f"architecture (no code from this folder runs){cut}:", "",
            "```python", "import intentbal", "from transformers import pipeline", "", "intentbal.register()",
            'classify = pipeline("text-classification", model="path/to/model", truncation=True)',
            'classify("I lost my card")', "```", "",
            "Without intentbal, transformers runs the head's code saved in this folder (`modeling.py`, torch "
            "and transformers only; read it before trusting a folder you did not make). Transformers 5 reads "
            "the model's config before its tokenizer, so the tokenizer needs the flag too:", "",
            "```python", "from transformers import AutoTokenizer, pipeline", "",
            'classify = pipeline("text-classification", model="path/to/model", trust_remote_code=True, '
            "truncation=True)",
            'tokenizer = AutoTokenizer.from_pretrained("path/to/model", trust_remote_code=True)', "```", "",
        ]
    else:
        hf = [f"With transformers alone, as a plain sequence-classification folder{cut}:", "",
              "```python", "from transformers import pipeline", "",
              'classify = pipeline("text-classification", model="path/to/model", truncation=True)', "```", ""]
    return [
        "## How to use", "", "`path/to/model` is this folder (or its Hub repository once uploaded).", "",
        *hf,
        "With intentbal (batches sorted by length; ONNX Runtime once exported):", "",
        "```python", "from intentbal import IntentClassifier", "",
        'clf = IntentClassifier.load("path/to/model")',
        'intents, confidences = clf.predict(["I lost my card"])', "```", "",
        "Faster on CPU, through ONNX Runtime (the export is checked against PyTorch):", "",
        "```sh", 'pip install "intentbal[onnx]"', "intentbal export --model path/to/model",
        "intentbal predict --model path/to/model --input texts.csv --output predictions.csv", "```", "",
    ]


def _limitations_section(report: Report | None, eval_name: str | None, max_length: int | None) -> list[str]:
    lines = ["## Limitations", ""]
    if report is None:
        lines.append("- Nothing here says how well the model works: it was not evaluated. Run `intentbal evaluate "
                     "--model path/to/model --data TEST --output EVAL --update-card` to add the evaluation.")
    else:
        s = report.summary
        lines.append(f"- Every number above was measured on `{eval_name}` ({s.n} examples) and holds for data "
                     "like it, not necessarily for the traffic the model will meet.")
        groups = [
            ("failing", f"Failing (the whole recall interval under {s.recall_threshold:.2f})"),
            ("at_risk", f"At risk (the recall interval straddles {s.recall_threshold:.2f})"),
            ("insufficient_evidence", f"Too little evidence (fewer than {s.min_support} eval examples: shown, "
                                      "not judged)"),
            ("not_evaluable", "Not evaluable (no eval examples)"),
            ("unseen_in_train", "Never seen in training (the model cannot predict them)"),
        ]
        for key, label in groups:
            if getattr(s, key):
                lines.append(f"- {label}: {', '.join(getattr(s, key))}.")
    lines.append("- The model always answers with one of its intents; route low-confidence answers to a fallback "
                 "(the evaluation's `fallback` section weighs what a threshold costs each intent).")
    if max_length:
        lines.append(f"- Texts longer than {max_length} tokens are cut to their first {max_length}.")
    return lines + [""]


def card_text(
    config: Config, record: ModelRecord, report: Report | None, eval_name: str | None,
    *, model_dir: Path | None = None,
) -> str:
    """:func:`model_card` with the config's names and tiers: the card (``README.md``) of a model folder."""
    return model_card(name=card_name(model_dir or config.output_dir / "model"), record=record, report=report,
                      eval_name=eval_name, rare_max=config.profile.rare_max, frequent_min=config.profile.frequent_min)
