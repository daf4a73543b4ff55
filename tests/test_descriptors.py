"""sda_lab.studies.descriptors: per-clip descriptors, traversal tables, slider labels, descriptor
directions, label stability over seeds, and the heatmap. Tiny model and 8 kHz clips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sda_lab.model.vae import ConvVAE
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.studies import descriptors as D
from sda_lab.studies.dimensions import rank_dimensions

from .test_generate import TINY, TINY_SPEC

SR = 8000


def _tone(freq: float, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(SR) / SR)


def test_clip_descriptors_order_simple_sounds():
    noise = 0.3 * np.random.default_rng(0).standard_normal(SR)
    x = np.stack([_tone(220), _tone(220, 0.25), _tone(880), noise])  # (4, samples)
    d = D.clip_descriptors(torch.tensor(x, dtype=torch.float32)[:, None], SR, f0=True,
                           n_fft=1024, hop_length=256)
    assert list(d.columns) == list(D.DESCRIPTORS)
    assert d.loc[0, "loudness_db"] - d.loc[1, "loudness_db"] == pytest.approx(6.02, abs=0.05)
    assert d.loc[2, "centroid_hz"] > 2 * d.loc[0, "centroid_hz"]
    assert d.loc[3, "flatness"] > 10 * d.loc[0, "flatness"]
    assert d.loc[3, "bandwidth_hz"] > d.loc[0, "bandwidth_hz"]
    assert d.loc[0, "f0_hz"] == pytest.approx(220, rel=0.03)
    assert d.loc[2, "f0_hz"] == pytest.approx(880, rel=0.03)
    assert np.isnan(d.loc[3, "f0_hz"])  # noise is not pitched


def test_a_pitch_at_the_trackers_floor_is_not_reported():
    """pYIN's range starts at 50 Hz: a thump there (a kick drum's) is no pitch it can tell,
    so it is left out, while a low tone above the floor is still read."""
    x = np.stack([_tone(D.F0_RANGE_HZ[0]), _tone(70.0)])  # (2, samples)
    d = D.clip_descriptors(torch.tensor(x, dtype=torch.float32)[:, None], SR, f0=True,
                           n_fft=1024, hop_length=256)
    assert np.isnan(d.loc[0, "f0_hz"]) and d.loc[1, "f0_hz"] == pytest.approx(70, rel=0.03)


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((0, SR)), "N >= 1"),
    (np.zeros((2, 100)), "n_fft"),
    (np.full((1, SR), np.nan), "NaN"),
    (np.zeros((2, 2, SR)), "shape"),
])
def test_clip_descriptors_bad_input_is_one_line(bad, needle):
    with pytest.raises(ValueError, match=needle) as exc:
        D.clip_descriptors(bad, SR, f0=False, n_fft=1024)
    assert "\n" not in str(exc.value)


def _traversal(slope: float, noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for rank, dim in ((0, 2), (1, 0)):
        for clip in range(3):
            for t in np.linspace(-2, 2, 5):
                row = {"rank": rank, "dim": dim, "clip": clip, "t": t}
                row.update({k: 100.0 * clip + rng.normal(0, 1.0) for k in D.DESCRIPTORS})
                if rank == 0:
                    row["centroid_hz"] = 1000 + 200 * clip + slope * t + noise * rng.normal()
                rows.append(row)
    return pd.DataFrame(rows)


def test_dimension_table_slope_and_correlation_within_clips():
    table = D.dimension_table(_traversal(slope=50.0))
    row = table[(table["dim"] == 2) & (table["descriptor"] == "centroid_hz")].iloc[0]
    assert row["slope"] == pytest.approx(50.0)  # per posterior sd, clip offsets removed
    assert row["correlation"] == pytest.approx(1.0)
    other = table[(table["dim"] == 0) & (table["descriptor"] == "centroid_hz")].iloc[0]
    assert abs(other["correlation"]) < 0.9


def test_labels_name_the_strongest_descriptor_and_its_direction():
    up = D.dimension_table(_traversal(slope=50.0))
    down = D.dimension_table(_traversal(slope=-50.0))
    assert D.label_for(2, up[up["dim"] == 2]) == "z2 · brighter ↑"
    assert D.label_for(2, down[down["dim"] == 2]) == "z2 · darker ↑"
    weak = D.dimension_table(_traversal(slope=1.0, noise=100.0))
    assert D.label_for(2, weak[weak["dim"] == 2]) == "z2"  # no clear descriptor: no name


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = ConvVAE.from_config(TINY).eval()
    spec = AudioSpectrogram(TINY_SPEC)
    g = torch.Generator().manual_seed(0)
    mels = torch.rand(6, 1, TINY.n_mels, TINY.n_frames, generator=g) * 0.6  # (6, 1, 32, 16)
    return model, spec, mels


def test_traverse_follows_the_explorers_ranking(tiny):
    model, spec, mels = tiny
    order, kl, mu, scale = rank_dimensions(model, mels)
    assert kl[order[0]] >= kl[order[-1]] and mu.shape == (6, TINY.latent_dim)
    tr = D.traverse(model, spec, mels, n_dims=2, n_clips=2, steps=3, f0=False)
    assert len(tr) == 2 * 2 * 3
    assert tr.groupby("rank")["dim"].first().tolist() == order[:2]
    labels = D.dimension_labels(model, spec, mels, table=D.dimension_table(tr))
    assert len(labels) == TINY.latent_dim
    assert all(lab.startswith(f"z{d}") for d, lab in enumerate(labels))


def test_descriptor_directions_recover_a_linear_descriptor(tiny):
    model, spec, mels = tiny
    from sda_lab.model.vae import encode_dataset

    mu, _ = encode_dataset(model, mels)
    w = torch.tensor([3.0, -1.0, 0.0, 2.0])
    desc = pd.DataFrame({k: np.zeros(6) for k in D.DESCRIPTORS})
    desc["centroid_hz"] = (mu @ w).numpy() * 100 + 1000
    desc["flatness"] = np.random.default_rng(0).random(6)
    dirs = D.descriptor_directions(model, spec, mels, descriptors=desc, alpha=1e-12)
    k = dirs.names.index("centroid_hz")
    cos = float(dirs.vectors[k] @ (w / w.norm()))
    assert cos == pytest.approx(1.0, abs=1e-3)
    assert float(dirs.r2[k]) > 0.99
    assert "loudness_db" not in dirs.names  # constant: no direction
    z = mu[0]
    moved = dirs.move(z, "centroid_hz", 1.0)
    gain = float(((moved - z) @ w) * 100) / dirs.std[k]
    assert gain == pytest.approx(1.0, rel=1e-3)  # one descriptor sd
    with pytest.raises(ValueError, match="no direction"):
        dirs.move(z, "loudness_db", 1.0)


def test_label_stability_counts_descriptors_not_indices_or_signs():
    labels = {0: ["z3 · brighter ↑", "z1 · louder ↑", "z0"],
              1: ["z7 · darker ↑", "z2", "z5 · noisier ↑"],
              2: ["z1 · brighter ↑", "z4 · quieter ↑", "z6"]}
    table = D.label_stability(labels, top=3).set_index("descriptor")
    assert table.loc["centroid_hz", "seeds_named"] == 3 and table.loc["centroid_hz", "stable"]
    assert table.loc["centroid_hz", "ranks"] == [0, 0, 0]
    assert table.loc["loudness_db", "seeds_named"] == 2 and table.loc["loudness_db", "stable"]
    assert not table.loc["flatness", "stable"]
    with pytest.raises(ValueError, match="at least 2 seeds"):
        D.label_stability({0: labels[0]})


def test_heatmap_has_a_row_per_dimension_and_a_column_per_descriptor():
    from sda_lab.interface.plotting import plot_descriptor_heatmap

    fig = plot_descriptor_heatmap(D.dimension_table(_traversal(slope=50.0)))
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 2 and len(ax.get_xticklabels()) == len(D.DESCRIPTORS)
    assert ax.get_yticklabels()[0].get_text() == "#1 z2"


def test_analysis_inversion_is_the_default_one_at_the_default_iterations():
    spec = AudioSpectrogram(TINY_SPEC)
    mels = torch.rand(2, 1, 32, 16, generator=torch.Generator().manual_seed(3))
    full = D.invert(spec, mels, seed=5)  # (2, 1, 8000)
    same = D.invert(spec, mels, seed=5, griffin_lim_iters=spec.config.griffin_lim_iters)
    torch.testing.assert_close(same, full)
    quick = D.invert(spec, mels, seed=5, griffin_lim_iters=4)
    assert quick.shape == full.shape and not torch.equal(quick, full)


def test_invert_with_an_inverter_is_what_it_gives_and_leaves_the_global_generator():
    from dataclasses import replace

    from sda_lab.representation.inverter import Inverter

    spec = AudioSpectrogram(TINY_SPEC)
    t = torch.arange(8000) / 8000
    tones = torch.stack([sum(torch.sin(2 * torch.pi * f * k * t) / k for k in range(1, 6))
                         for f in (110.0, 220.0, 330.0)])  # (3, 8000)
    mels = spec.waveform_to_mel(0.2 * tones.unsqueeze(1))  # (3, 1, 32, 16)
    inverter = Inverter(spec, start="harmonic")
    torch.manual_seed(11)
    state = torch.get_rng_state()
    heard = D.invert(spec, mels, seed=5, inverter=inverter)  # (3, 1, 8000)
    assert torch.equal(torch.get_rng_state(), state)
    expected = inverter(mels, heard.shape[-1], torch.Generator().manual_seed(5))  # (3, 1, 8000)
    # FFT threads reorder sums: not bit-equal
    torch.testing.assert_close(heard, expected, atol=1e-3 * float(expected.abs().max()), rtol=0)
    with pytest.raises(ValueError, match="carries its own"):
        D.invert(spec, mels, griffin_lim_iters=4, inverter=inverter)
    other = AudioSpectrogram(replace(TINY_SPEC, scale="db"))
    with pytest.raises(ValueError, match="another spectrogram config"):
        D.invert(other, mels, inverter=inverter)
