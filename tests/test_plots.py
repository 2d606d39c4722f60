"""The training curve figure, and the report page that shows it."""

import io

import pytest

from intentbal.evaluation.metrics import evaluate_predictions
from intentbal.reports.html import render_html
from intentbal.reports.plots import training_curve
from intentbal.training.results import EpochRecord

PNG = b"\x89PNG\r\n\x1a\n"


def _history(recall, members=1):
    return [EpochRecord(epoch=float(e), step=3 * e, loss=1.5 / e, member=k,
                        validation_macro_recall=0.2 * e if recall else None)
            for k in range(members) for e in range(1, 5)]


@pytest.mark.parametrize("recall, members", [(False, 1), (True, 1), (True, 3)])
def test_training_curve_is_a_png_with_and_without_validation_recall(recall, members):
    from PIL import Image

    png = training_curve(_history(recall, members))
    assert png[:8] == PNG
    assert Image.open(io.BytesIO(png)).size[0] > 400


def test_the_second_axis_appears_only_with_validation_recall(monkeypatch):
    import matplotlib.axes

    made = []
    real = matplotlib.axes.Axes.twinx
    monkeypatch.setattr(matplotlib.axes.Axes, "twinx", lambda self, *a: made.append(1) or real(self, *a))
    training_curve(_history(False))
    assert not made
    training_curve(_history(True))
    assert made == [1]


def test_the_report_page_shows_the_training_curve_with_its_caption():
    report = evaluate_predictions(["a", "a", "b"], ["a", "b", "b"], train_counts={"a": 5, "b": 2})
    page = render_html(report, figures={"training_curve": training_curve(_history(True))})
    assert "alt='training_curve'" in page and "data:image/png;base64," in page
    assert "mean training loss of each epoch" in page
