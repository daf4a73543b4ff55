"""The default model's cache: trained once, even when two kernels ask at once (issue 19)."""

import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import pytest

import sda_lab.training.loop
import sda_lab.training.recipes
from sda_lab.model.vae import VAEConfig
from sda_lab.training.cache import default_cache_dir, default_model_path, load_or_train_default
from sda_lab.training.checkpoint import save_checkpoint
from sda_lab.training.config import TrainConfig


def _shrink(calls: Path, setattr=setattr) -> None:
    """The default recipe shrunk (5 clips, 4 channels, 1 epoch); every call of train() leaves
    a file in ``calls`` (so calls from other processes count too)."""
    tiny = VAEConfig(latent_dim=4, dropout=0.0, channels=(4, 8))
    setattr(sda_lab.training.recipes, "DEFAULT_RECIPE",
            replace(sda_lab.training.recipes.DEFAULT_RECIPE, model=tiny))
    setattr(sda_lab.training.recipes, "DEFAULT_CLIPS_PER_KIND", 1)
    real = sda_lab.training.loop.train

    def counted(*args, **kwargs):
        (calls / f"{time.monotonic_ns()}").touch()
        time.sleep(0.5)  # long enough for the other caller to arrive while this one trains
        return real(*args, **kwargs)

    setattr(sda_lab.training.loop, "train", counted)


@pytest.fixture
def tiny_default(monkeypatch, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    _shrink(calls, monkeypatch.setattr)
    return calls


def _ask(path: str, calls: str, barrier) -> None:
    _shrink(Path(calls))  # a spawned child starts from the real recipe: shrink it here too
    barrier.wait()
    load_or_train_default(path, progress=False,
                          config=TrainConfig(epochs=1, batch_size=5, device="cpu"))


def test_two_processes_at_once_train_once(tmp_path, tiny_default):
    target = tmp_path / "default.pt"
    # spawn, not fork: a child forked after torch's OpenMP pool started can hang in it
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_ask, args=(str(target), str(tiny_default), barrier))
             for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(list(tiny_default.iterdir())) == 1  # the second waited and reused the file
    assert target.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "default.pt",
                                                          "default.pt.lock"]


def test_a_cached_model_is_loaded_not_trained(tmp_path, tiny_default):
    cfg = TrainConfig(epochs=1, batch_size=5, device="cpu")
    first = load_or_train_default(tmp_path / "m.pt", progress=False, config=cfg)
    second = load_or_train_default(tmp_path / "m.pt", progress=False, config=cfg)
    assert len(list(tiny_default.iterdir())) == 1
    assert second.history == first.history and second.model.latent_dim == 4
    assert second.spectrogram().config == sda_lab.training.recipes.DEFAULT_RECIPE.spectrogram


def test_interrupted_training_leaves_nothing_under_the_loaded_name(tmp_path, monkeypatch):
    """Another kernel must never load a half-trained default model from the cache."""
    seen = {}

    def train_then_die(model, mels, config, sinks=None, **kw):
        seen["path"] = Path(sinks.checkpoint)
        save_checkpoint(sinks.checkpoint, model, None, None)  # one epoch's checkpoint...
        raise KeyboardInterrupt  # ...then the user interrupts

    monkeypatch.setattr(sda_lab.training.loop, "train", train_then_die)
    monkeypatch.setattr(sda_lab.training.recipes, "DEFAULT_CLIPS_PER_KIND", 1)
    target = tmp_path / "default.pt"
    with pytest.raises(KeyboardInterrupt):
        load_or_train_default(target, progress=False)
    assert seen["path"] != target and not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["default.pt.lock"]  # partial removed


def test_cache_folder_of_a_checkout_is_its_data_folder(monkeypatch):
    monkeypatch.delenv("SDA_LAB_CACHE", raising=False)
    assert default_cache_dir() == Path(__file__).resolve().parents[1] / "data" / "cache"


def test_cache_folder_comes_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SDA_LAB_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    a = default_model_path()
    b = default_model_path(TrainConfig(epochs=3))
    assert a.parent == tmp_path / "c" and a.name.startswith("default_vae_") and a != b
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("SDA_LAB_CACHE", str(tmp_path / "file" / "under"))
    with pytest.raises(ValueError, match="SDA_LAB_CACHE: expected a folder"):
        default_cache_dir()



def test_another_representation_is_another_cached_model(monkeypatch):
    """The cached default model's name follows the recipe's spectrogram config (a model
    trained on log1p mels must not be loaded for a dB recipe)."""
    from dataclasses import replace

    from sda_lab.representation.spectrogram import SpectrogramConfig
    from sda_lab.training import recipes

    shipped, current = recipes.DEFAULT_RECIPE, default_model_path()
    names = {}
    for scale in ("log1p", "db"):
        monkeypatch.setattr(recipes, "DEFAULT_RECIPE", replace(
            shipped, spectrogram=SpectrogramConfig(scale=scale)))
        names[scale] = default_model_path()
    assert names["log1p"] != names["db"]
    assert names[shipped.spectrogram.scale] == current
