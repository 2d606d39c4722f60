"""``train.refit_epochs``: the refit continues the evaluated model for a few passes instead of
starting again from the pretrained one."""

import torch

from test_refit import EPOCHS, ROWS, recipe

from conftest import toy_rows, write_csv


def spy_fits(monkeypatch) -> list[dict]:
    """Every fine-tune the run makes, in order: its rows, the weights it started from, and its
    model's weights as it returned them (before the recipe writes tau into the bias)."""
    from intentbal.training import soup

    fits: list[dict] = []
    real = soup.train_soup

    def spy(data, **kw):
        result = real(data, **kw)
        fits.append({"rows": len(data), "initial": kw.get("initial"), "epochs": kw["train_config"].epochs,
                     "trained": {k: v.detach().clone() for k, v in result.model.state_dict().items()}})
        return result

    monkeypatch.setattr(soup, "train_soup", spy)
    return fits


def run(tmp_path, fast_overrides, *extra: str, values: dict | None = None):
    from intentbal.commands.train import train_run
    from intentbal.config import load_config

    data = write_csv(tmp_path / "train.csv", toy_rows())
    config = load_config(overrides=recipe(fast_overrides, *extra),
                         values={"data.train": data, "output_dir": tmp_path / "run", **(values or {})})
    return train_run(config)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_the_warm_refit_starts_from_the_evaluated_model_and_trains_its_own_epochs(tmp_path, fast_overrides,
                                                                                  monkeypatch, caplog):
    fits = spy_fits(monkeypatch)
    caplog.set_level("INFO", logger="intentbal")
    result = run(tmp_path, fast_overrides, "train.refit_epochs=1", "train.logit_adjustment=1.5")

    evaluated, refit = fits
    held = result.report.summary.refit.held_out_rows
    assert evaluated["initial"] is None and evaluated["epochs"] == EPOCHS and evaluated["rows"] == ROWS - held
    assert refit["rows"] == ROWS and refit["epochs"] == 1
    # its starting weights are the evaluated model's as trained: the tau baked into them taken out again
    assert result.adjustment.tau == 1.5
    assert_same_weights(refit["initial"], evaluated["trained"])
    assert result.metrics.shipped.train_samples == ROWS, "one pass over every row"
    assert "refit: continues the model reported on for train.refit_epochs=1" in caplog.text

    card = (result.output_dir / "model" / "README.md").read_text()
    assert "| refit | continued from the model the evaluation measured: 1 more epoch over every labelled row |" \
        in card

    shipped = result.output_dir / "model" / "model.safetensors"
    from safetensors.torch import load_file

    changed = [k for k, v in load_file(shipped).items() if not torch.equal(v, refit["initial"][k].to(v.dtype))]
    assert any(k.startswith("classifier.") for k in changed) and any("encoder.layer." in k for k in changed), \
        "the refit trained the head and the top layers further"


def test_off_every_fit_starts_from_the_pretrained_model(tmp_path, fast_overrides, monkeypatch):
    fits = spy_fits(monkeypatch)
    result = run(tmp_path, fast_overrides)
    assert [f["initial"] for f in fits] == [None, None] and [f["epochs"] for f in fits] == [EPOCHS, EPOCHS]
    assert "| refit |" not in (result.output_dir / "model" / "README.md").read_text()


def test_with_a_pool_each_refit_starts_from_its_evaluated_counterpart(tmp_path, fast_overrides, monkeypatch):
    pool = ["where is my parcel now", "money back please", "forgot the password", "stolen card"]
    unlabeled = write_csv(tmp_path / "pool.csv", [(t,) for t in pool], header=("text",))
    fits = spy_fits(monkeypatch)
    run(tmp_path, fast_overrides, "train.refit_epochs=1", "self_training.threshold=0", "self_training.alpha=0",
        values={"data.unlabeled": unlabeled})

    teacher, student, refit_teacher, refit_student = fits
    assert teacher["initial"] is None and student["initial"] is None
    assert_same_weights(refit_teacher["initial"], teacher["trained"])
    assert_same_weights(refit_student["initial"], student["trained"])
    assert refit_teacher["epochs"] == 1 and refit_student["epochs"] < 1, "the student's steps stay its teacher's"
