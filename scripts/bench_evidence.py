"""Evidence beside the head, measured post hoc on saved models before any is built as an option.

  python scripts/bench_evidence.py --data data/benchmarks/banking77-lt \
      runs/speed/banking77-lt/bf16--5-epochs--lr-3e-4/seed0/run/model [more model folders]

Each model folder is one that ``scripts/bench_cpu_recipe.py --eval-on-validation`` saved: trained on
every row of ``DATA/train.csv``, never on ``DATA/validation.csv``. For each, the validation macro
recall of the head's probabilities (after its logit adjustment) is printed beside two mixtures:

- *a second opinion* (``opinion W``): ``(1 - W) * head + W * LR``, where LR is a class-balanced
  logistic regression (C=10) fitted on the model's own unit-length sentence embeddings of the
  training rows; ``frozen opinion W`` fits it on the embeddings of the encoder before any
  fine-tuning (the embedded all-MiniLM-L6-v2, mean-pooled by ``benchmark.py``'s frozen-encoder anchor);
- *nearest examples for the tiniest intents* (``nearest W``, DNNC-style): for the intents with 2-4
  training rows only, the head's probability is mixed with weight W with the softmax of 20 x each
  intent's best cosine to its training examples (the head's own scale).

W = 0 is the head alone. The last two lines give the mean over the folders and the mean per-folder
difference from the head. Nothing is chosen here: a mixture would become an option only if it beat
the head on both long tails' validation data.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark import mean_pooled  # noqa: E402  (the frozen-encoder anchor's embeddings; this folder is on the path)

from intentbal.data.readers import load_intents  # noqa: E402  (after the tree is on the path)
from intentbal.inference.classifier import IntentClassifier  # noqa: E402
from intentbal.model.adjustment import macro_recall  # noqa: E402
from intentbal.model.encoding import encode, length_sorted, pad_id_of  # noqa: E402
from intentbal.model.loading import embedded_model_dir  # noqa: E402
from intentbal.model.prototypes import embed_rows  # noqa: E402

OPINION_WEIGHTS = (0.1, 0.25, 0.5)
NEAREST_WEIGHTS = (0.25, 0.5, 1.0)
TINY_MAX = 4  # "the tiniest intents": 2-4 training rows


def embeddings(clf: IntentClassifier, texts: list[str]) -> np.ndarray:
    """The model's unit-length sentence embeddings (its prototype head's ``embed``) of ``texts``."""
    import torch

    ids, _ = encode(clf.tokenizer, texts, clf.max_length)
    out = np.zeros((len(ids), clf.model.classifier.weight.shape[1]), dtype=np.float32)
    with torch.inference_mode():
        for chunk in length_sorted(ids, 128):
            vectors = embed_rows(clf.model, ids, chunk, pad_id=pad_id_of(clf.tokenizer), device="cpu")
            out[chunk] = torch.nn.functional.normalize(vectors.float(), dim=-1).numpy()
    return out


def opinion(seen: np.ndarray, y: np.ndarray, asked: np.ndarray, n_intents: int) -> np.ndarray:
    """Probabilities of a class-balanced logistic regression (C=10) fitted on ``seen`` rows of intents ``y``."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=10, class_weight="balanced", max_iter=2000).fit(seen, y)
    probs = np.zeros((len(asked), n_intents), dtype=np.float32)
    probs[:, lr.classes_] = lr.predict_proba(asked)
    return probs


def scores(folder: Path, data: Path, frozen: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """Validation macro recall of the head and of each mixture, for the model in ``folder``."""
    train, validation = load_intents(data / "train.csv"), load_intents(data / "validation.csv")
    clf = IntentClassifier.load(folder, backend="torch")
    intents = clf.intents
    head = clf.proba(validation.texts)
    seen, asked = embeddings(clf, train.texts), embeddings(clf, validation.texts)
    y = np.array([intents.index(i) for i in train.intents])
    second = opinion(seen, y, asked, len(intents))
    frozen_second = opinion(frozen[0], y, frozen[1], len(intents))
    similarity = asked @ seen.T
    best = np.stack([similarity[:, y == j].max(axis=1) for j in range(len(intents))], axis=1)
    nearest = np.exp(20 * (best - best.max(axis=1, keepdims=True)))
    nearest /= nearest.sum(axis=1, keepdims=True)
    counts = Counter(train.intents)
    tiny = np.array([counts[i] <= TINY_MAX for i in intents])

    def recall(probs: np.ndarray) -> float:
        return macro_recall([intents[k] for k in probs.argmax(axis=1)], validation.intents)

    row = {"head": recall(head)}
    for w in OPINION_WEIGHTS:
        row[f"opinion {w:g}"] = recall((1 - w) * head + w * second)
        row[f"frozen opinion {w:g}"] = recall((1 - w) * head + w * frozen_second)
    for w in NEAREST_WEIGHTS:
        mixed = head.copy()
        mixed[:, tiny] = (1 - w) * head[:, tiny] + w * nearest[:, tiny]
        row[f"nearest {w:g}"] = recall(mixed)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with train.csv and validation.csv")
    ap.add_argument("models", type=Path, nargs="+", help="model folders trained on DATA/train.csv only")
    a = ap.parse_args(argv)
    encoder = embedded_model_dir()
    frozen = (mean_pooled(load_intents(a.data / "train.csv").texts, encoder),
              mean_pooled(load_intents(a.data / "validation.csv").texts, encoder))
    rows = []
    for folder in a.models:
        rows.append(scores(folder, a.data, frozen))
        print(folder, {k: round(v, 4) for k, v in rows[-1].items()}, flush=True)
    print("mean", {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]})
    print("minus the head", {k: round(float(np.mean([r[k] - r["head"] for r in rows])), 4) for k in rows[0]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
