"""The rate-distortion sweep: its grid, its table, its plot, and the DataSpec it relies on."""

import math
from dataclasses import replace
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import sda_lab  # noqa: E402

from sda_lab.core.settings import SettingError  # noqa: E402
from sda_lab.data import split_by_file  # noqa: E402
from sda_lab.interface.plotting import plot_rate_distortion  # noqa: E402
from sda_lab.model.losses import elbo_kl_weight  # noqa: E402
from sda_lab.model.vae import VAEConfig  # noqa: E402
from sda_lab.studies.experiments import (DataSpec, load_clip_mels, load_split,  # noqa: E402
                                         run_grid)
from sda_lab.studies.rate_distortion import (SweepConfig, equivalent_beta, example_folder,
                                             free_bits_grid, heldout_reconstructions,
                                             rate_distortion_grid, rd_table)  # noqa: E402
from sda_lab.training.config import TrainConfig  # noqa: E402

TINY_MODEL = VAEConfig(dropout=0.0, latent_dim=4, channels=(4, 8, 16, 32))
TINY_DATA = DataSpec(source="default", clips_per_kind=2, val_fraction=0.3, tag="synth")


def test_dataspec_scale_and_split_by_file():
    train, val = load_split(TINY_DATA)  # 10 clips, 3 held out
    assert train.shape[0] == 7 and val.shape[0] == 3
    assert train.shape[1:] == (1, 128, 94)
    db_train, _ = load_split(replace(TINY_DATA, scale="db"))
    # the same clips on another scale: different values, same shape
    assert db_train.shape == train.shape
    assert (db_train - train).abs().mean() > 0.01
    # the held-out clips are whole files, never on both sides, and load_split returns them
    mels, files, _ = load_clip_mels(TINY_DATA)
    train_idx, val_idx, val_files = split_by_file(files, TINY_DATA.val_fraction,
                                                  TINY_DATA.split_seed)
    assert not {files[i] for i in train_idx} & {files[i] for i in val_idx}
    assert sorted({files[i] for i in val_idx}) == val_files and len(val_files) == 3
    assert torch.equal(val, mels[val_idx]) and torch.equal(train, mels[train_idx])


def test_held_out_files_keep_all_their_clips_on_one_side(tmp_path):
    """A folder whose files are cut into several clips: every clip of a file on one side."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(4):  # 4 files of 2.5 s: several 1 s clips each
        sf.write(tmp_path / f"f{i}.wav", 0.1 * rng.standard_normal(120_000), 48_000)
    data = DataSpec(source="folder", folder=str(tmp_path), val_fraction=0.5)
    mels, files, _ = load_clip_mels(data)
    assert len(files) > len(set(files)) == 4
    train, val = load_split(data)
    train_idx, val_idx, _ = split_by_file(files, 0.5, 0)
    assert not {files[i] for i in train_idx} & {files[i] for i in val_idx}
    assert train.shape[0] + val.shape[0] == len(files)
    assert torch.equal(val, mels[val_idx])


def test_dataspec_rejects_bad_fields():
    with pytest.raises(ValueError, match="scale"):
        DataSpec(scale="linear")
    with pytest.raises(ValueError, match="val_fraction"):
        DataSpec(val_fraction=1.0)
    with pytest.raises(ValueError, match="max_clips"):
        DataSpec(max_clips=1)


def test_dataspec_defaults_keep_old_keys():
    # new fields at their defaults must not change a cached run's key
    from sda_lab.studies.experiments import RunSpec

    a = RunSpec("a", 0, TrainConfig(epochs=1), data=DataSpec())
    b = RunSpec("a", 0, TrainConfig(epochs=1), data=DataSpec(scale="log1p", val_fraction=0.0))
    c = RunSpec("a", 0, TrainConfig(epochs=1), data=DataSpec(scale="db"))
    assert a.key == b.key != c.key


def test_max_clips_keeps_every_file_evenly():
    _, every, _ = load_clip_mels(DataSpec(source="default", clips_per_kind=4))
    mels, files, _ = load_clip_mels(DataSpec(source="default", clips_per_kind=4, max_clips=5))
    assert mels.shape[0] == 5 and len(files) == 5
    # spread over the whole clip order (a folder's files come one after the other), not the
    # first five
    assert files[0] == every[0] and files[-1] == every[-1]
    assert [every.index(f) for f in files] == [0, 5, 10, 14, 19]


def test_grid_has_every_beta_scale_seed_and_the_markers():
    cfg = SweepConfig(betas=(1.0, 100.0), model=TINY_MODEL, max_steps=2)
    specs = rate_distortion_grid(TINY_DATA, seeds=[0, 1], config=cfg)
    arms = sorted({s.arm for s in specs})
    assert "synth db beta=1" in arms and "synth log1p beta=100" in arms
    assert "synth log1p reference" in arms and "synth db reference" not in arms  # log1p only
    assert "synth db free bits 0.5" in arms
    assert any(a.endswith("shipped") for a in arms)
    assert "synth log1p free bits 0.5" not in arms  # free bits on db only, by default
    # 2 betas x 2 scales + reference + free bits + shipped = 7 arms, 2 seeds each
    assert len(specs) == 7 * 2 and len({s.key for s in specs}) == 14
    fb = next(s for s in specs if s.arm == "synth db free bits 0.5")
    assert fb.train.free_bits == 0.5 and fb.train.kl_weight == 100.0
    assert {s.data.scale for s in specs if " db " in s.arm} == {"db"}
    with pytest.raises(ValueError, match="validation"):
        rate_distortion_grid(replace(TINY_DATA, val_fraction=0.0), [0], cfg)
    with pytest.raises(ValueError, match="betas"):
        SweepConfig(betas=(0.0,))


def test_free_bits_grid_is_the_grids_free_bits_pair_on_more_seeds():
    cfg = SweepConfig(betas=(1.0, 100.0), model=TINY_MODEL, max_steps=2)
    grid = {s.key: s for s in rate_distortion_grid(TINY_DATA, seeds=[0, 1, 2], config=cfg)}
    pair = free_bits_grid(TINY_DATA, seeds=[1, 2], config=cfg)
    assert sorted({s.arm for s in pair}) == ["synth db beta=100", "synth db free bits 0.5"]
    assert len(pair) == 4 and all(s.key in grid for s in pair)  # the grid's own runs, same keys
    assert sorted(s.seed for s in pair) == [1, 1, 2, 2]
    for none in (None, 0.0):
        with pytest.raises(ValueError, match="^config.free_bits: expected a floor .* > 0, got"):
            free_bits_grid(TINY_DATA, [0], replace(cfg, free_bits=none))
    for bad in ({"free_bits": -0.5}, {"free_bits": float("nan")}, {"free_bits_beta": 0.0}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))} must be None"):
            replace(cfg, **bad)


def test_equivalent_beta_converts_the_seed_loss():
    seed = TrainConfig(kl_weight=1e-3)
    assert math.isclose(equivalent_beta(seed, 12_032, 0.1), elbo_kl_weight(1e-3, 12_032, 0.1))
    elbo = TrainConfig(kl_weight=50.0, gaussian_sigma=0.1)
    assert equivalent_beta(elbo, 12_032, 0.1) == pytest.approx(50.0)
    assert equivalent_beta(elbo, 12_032, 0.2) == pytest.approx(200.0)  # sigma rescales beta


def test_tiny_sweep_table_and_plot(tmp_path):
    cfg = SweepConfig(betas=(0.01, 1e5), model=TINY_MODEL, max_steps=6, batch_size=4,
                      scales=("db",), free_bits=None, shipped=False, reference_weight=None)
    res = run_grid(rate_distortion_grid(TINY_DATA, [0, 1], cfg), executor="serial",
                   store=tmp_path, progress=False)
    assert res.failed.empty
    table = rd_table(res)
    assert list(table["beta"]) == [0.01, 1e5] and set(table["seeds"]) == {2}
    assert (table["distortion"] > 0).all() and (table["rate"] >= 0).all()
    low, high = table.iloc[0], table.iloc[1]
    # beta 1e5 makes the KL cost dominate: far less rate than beta 0.01
    assert high["rate"] < 0.5 * low["rate"]
    f = res.finals()
    assert {"val_recon", "val_baseline", "val_ratio", "train_ratio"} <= set(f.columns)
    fig = plot_rate_distortion(table)
    assert len(fig.axes) == 1
    again = run_grid(rate_distortion_grid(TINY_DATA, [0, 1], cfg), executor="serial",
                     store=tmp_path, progress=False)
    assert all(r["cached"] for r in again.records)
    assert rd_table(again)["rate"].tolist() == table["rate"].tolist()


def test_rd_table_needs_validation(tmp_path):
    from sda_lab.studies.experiments import grid

    specs = grid({"a": TrainConfig(epochs=1, batch_size=4)},
                 [0], DataSpec(source="default", clips_per_kind=1))
    specs = [replace(s, model=TINY_MODEL) for s in specs]
    res = run_grid(specs, executor="serial", store=tmp_path, progress=False)
    with pytest.raises(ValueError, match="val_fraction"):
        rd_table(res)


def test_example_folder_reads_only_the_variable_then_the_bundled_examples(monkeypatch, tmp_path):
    bundled = Path(sda_lab.__file__).resolve().parents[1] / "data" / "examples" / "instruments"
    monkeypatch.delenv("SDA_LAB_EXTRA_AUDIO", raising=False)
    assert example_folder("instruments") == bundled  # no folder outside the repository
    (tmp_path / "instruments").mkdir()
    monkeypatch.setenv("SDA_LAB_EXTRA_AUDIO", str(tmp_path))
    assert example_folder("instruments") == tmp_path / "instruments"
    (tmp_path / "instruments").rmdir()  # the variable's folder lacks the part: the bundled one
    assert example_folder("instruments") == bundled
    with pytest.raises(FileNotFoundError, match="no folder"):
        example_folder("no-such-part")
    monkeypatch.setenv("SDA_LAB_EXTRA_AUDIO", str(tmp_path / "nowhere"))
    with pytest.raises(SettingError, match="SDA_LAB_EXTRA_AUDIO"):
        example_folder("instruments")


def test_the_sweep_refuses_data_that_cannot_leave_two_training_clips(tmp_path):
    from .test_cli import write_folder

    cfg = SweepConfig(betas=(1.0,), model=TINY_MODEL, max_steps=2)
    folder = write_folder(tmp_path / "two", names=("a.wav", "b.wav"), seconds=1.0)
    one_left = DataSpec(source="folder", folder=str(folder), val_fraction=0.5)
    with pytest.raises(ValueError, match="no file can be held out .* leave 2 training clips"):
        rate_distortion_grid(one_left, [0], cfg)


def test_markers_plot_and_heldout_reconstructions(tmp_path):
    cfg = SweepConfig(betas=(1.0,), model=TINY_MODEL, max_steps=2, batch_size=4,
                      free_bits_beta=1.0)
    specs = rate_distortion_grid(TINY_DATA, [0], cfg)
    res = run_grid(specs, executor="serial", store=tmp_path, progress=False)
    table = rd_table(res)
    kinds = set(table["kind"])
    assert {"grid", "reference", "free bits 0.5", "shipped"} <= kinds
    reference = table[table["kind"] == "reference"].iloc[0]
    assert reference["beta"] == pytest.approx(elbo_kl_weight(1.0, 128 * 94, 0.1))
    fig = plot_rate_distortion(table)
    assert len(fig.axes[0].get_legend().get_texts()) == len(table)  # a curve per scale + markers
    target, recon, sr = heldout_reconstructions(specs[0])
    assert target.shape == recon.shape and target.shape[:2] == (1, 1) and sr == 48_000


def test_regularisers_sit_beside_the_shipped_marker(tmp_path):
    """Each regulariser is the shipped default with one change, on the shipped scale; they
    train on the runner's cached mels and land on the plane as their own markers."""
    from sda_lab.studies.rate_distortion import REGULARISERS, regulariser_grid, shipped_scale

    cfg = SweepConfig(betas=(1.0,), model=TINY_MODEL, max_steps=3, batch_size=4,
                      free_bits=None, reference_weight=None)
    names = ("SpecAugment", "latent vector", "dropout 0.2", "no mel shift", "no weight average")
    scale = shipped_scale()
    grid_arms = {s.arm: s for s in rate_distortion_grid(TINY_DATA, [0], cfg)}
    shipped = grid_arms[f"synth {scale} shipped"]
    specs = regulariser_grid(TINY_DATA, [0, 1], cfg, names)
    by_arm = {s.arm: s for s in specs}
    assert len(specs) == 10 and set(by_arm) == {f"synth {scale} {n}" for n in names}
    masks = by_arm[f"synth {scale} SpecAugment"]
    vec = by_arm[f"synth {scale} latent vector"]
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    recipe_train = OWN_AUDIO_RECIPE.train
    # the shipped marker trains as the recipe does: its augmentation and weight average too
    assert (shipped.train.augment, shipped.train.ema_decay) == (recipe_train.augment,
                                                                recipe_train.ema_decay)
    shift = 0 if recipe_train.augment is None else recipe_train.augment.mel_shift
    assert masks.train.augment.freq_mask > 0 and not masks.train.augment.on_waveform
    assert masks.train.augment.mel_shift == shift  # laid over the recipe's, not instead of it
    assert replace(masks.train, augment=shipped.train.augment) == shipped.train
    assert masks.model == shipped.model
    unshifted = by_arm[f"synth {scale} no mel shift"].train
    assert unshifted.augment is None or unshifted.augment.mel_shift == 0
    assert by_arm[f"synth {scale} no weight average"].train.ema_decay is None
    assert masks.data == shipped.data and vec.train == shipped.train
    assert shipped.model.latent == OWN_AUDIO_RECIPE.model.latent  # the recipe's latent
    assert shipped.model.channels == TINY_MODEL.channels
    assert (vec.model.latent, vec.model.time_halvings, vec.model.latent_dim) == ("vector", None, 64)
    assert by_arm[f"synth {scale} dropout 0.2"].model.dropout == 0.2
    res = run_grid([masks, vec], executor="serial", store=tmp_path, progress=False)
    assert res.failed.empty, res.failed
    table = rd_table(res)
    assert set(table["kind"]) == {"SpecAugment", "latent vector"}
    assert len(plot_rate_distortion(table).axes) == 1
    with pytest.raises(ValueError, match="regularisers must be among"):
        regulariser_grid(TINY_DATA, [0], cfg, ["weight decay"])
    assert set(names) <= set(REGULARISERS)
