import pytest
import torch

from intentbal.config import ModelConfig, TrainConfig
from intentbal.training import soup
from intentbal.training.loop import fine_tune
from intentbal.training.soup import train_soup

from conftest import toy_data


@pytest.fixture
def settings(tiny_model):
    return dict(model_config=ModelConfig(name_or_path=str(tiny_model), max_length=32),
                train_config=TrainConfig(epochs=2, batch_size=8, soup=2), seed=3)


@pytest.mark.slow  # four fine-tunes
def test_soup_is_the_mean_of_its_members(settings):
    single = settings["train_config"].model_copy(update={"soup": 1})
    a = fine_tune(toy_data(), model_config=settings["model_config"], train_config=single, seed=3)
    b = fine_tune(toy_data(), model_config=settings["model_config"], train_config=single, seed=4)
    mixed = train_soup(toy_data(), **settings)
    pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    assert any(not torch.equal(pa[n], pb[n]) for n in pa)  # the seeds made different members
    for name, p in mixed.model.named_parameters():
        assert torch.allclose(p, (pa[name] + pb[name]) / 2, atol=1e-6), name
    assert mixed.steps == a.steps + b.steps
    assert mixed.train_samples == a.train_samples + b.train_samples


@pytest.mark.slow  # two fine-tunes
def test_soup_of_one_is_a_plain_fine_tune(settings):
    one = settings["train_config"].model_copy(update={"soup": 1})
    a = train_soup(toy_data(), model_config=settings["model_config"], train_config=one, seed=3)
    b = fine_tune(toy_data(), model_config=settings["model_config"], train_config=one, seed=3)
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), name


@pytest.mark.slow  # three soups of two
def test_resume_keeps_finished_members_and_gives_the_same_soup(settings, tmp_path, monkeypatch):
    whole = train_soup(toy_data(), **settings)
    calls = []
    real = soup.fine_tune

    def crash_on_second(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(soup, "fine_tune", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        train_soup(toy_data(), **settings, checkpoint_dir=tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "member-0.safetensors").is_file()

    calls.clear()
    monkeypatch.setattr(soup, "fine_tune", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    resumed = train_soup(toy_data(), **settings, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert calls == [4]  # only the member the crash interrupted is trained again
    for (name, p), q in zip(resumed.model.named_parameters(), whole.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name
    # every member's curve, the kept member's read back from its file
    assert [(r.member, r.epoch) for r in whole.history] == [(0, 1.0), (0, 2.0), (1, 1.0), (1, 2.0)]
    assert resumed.history == whole.history


@pytest.mark.slow  # a soup of two, then a resume
def test_resume_after_every_member_finished_trains_nothing(settings, tmp_path, monkeypatch):
    whole = train_soup(toy_data(), **settings, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(soup, "fine_tune", lambda *a, **k: pytest.fail("a finished member was retrained"))
    resumed = train_soup(toy_data(), **settings, checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.intents == whole.intents
    for (name, p), q in zip(resumed.model.named_parameters(), whole.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_a_members_bars_keep_the_notes_and_its_stages_stay_apart():
    from intentbal.progress import NotedProgress, note, suffixed

    seen = []

    class Bars:
        def __call__(self, stage, done, total, /):
            seen.append((stage, done, total))

        def note(self, stage, text):
            seen.append((stage, text))

    member = suffixed(Bars(), "model 2 of 3")
    member("train contrastive", 3, 3)  # the contrastive stage's bar, closed before the fine-tune's opens
    member("train", 1, 4)
    note(member, "train", "loss 0.5")
    assert isinstance(member, NotedProgress)
    assert seen == [("train contrastive model 2 of 3", 3, 3), ("train model 2 of 3", 1, 4),
                    ("train model 2 of 3", "loss 0.5")]
    plain = suffixed(lambda *call: seen.append(call), "model 1 of 3")
    note(plain, "train", "loss 0.5")  # a plain callable underneath: the note goes nowhere
    plain("train", 2, 4)
    assert seen[3:] == [("train model 1 of 3", 2, 4)]
