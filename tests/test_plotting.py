"""Figures and players: what they return, and what a reader sees."""

import base64
import io
import re

import matplotlib
import numpy as np
import soundfile as sf
import torch

matplotlib.use("Agg")

from sda_lab.interface import plotting  # noqa: E402
from sda_lab.representation.spectrogram import SpectrogramConfig  # noqa: E402


def test_flac_round_trip_is_16_bit_and_within_full_scale():
    x = torch.linspace(-2, 2, 4800)
    data, sr = sf.read(io.BytesIO(plotting.flac_bytes(x, 48_000)))
    assert sr == 48_000 and data.shape == (4800,)
    assert data.max() <= 1.0 and data.min() >= -1.0
    assert abs(data[2400] - float(x[2400])) < 1e-3


def test_players_show_their_length_before_a_click():
    """preload="metadata": the browser reads the duration up front (no 0:00 / 0:00)."""
    html = plotting.audio_row([torch.zeros(4800), torch.zeros(9600)], ["a <b>", "c"], 48_000).data
    assert html.count("<audio") == 2 and html.count('preload="metadata"') == 2
    assert "a &lt;b&gt;" in html  # captions are escaped
    src = re.search(r'src="data:audio/flac;base64,([^"]+)"', html).group(1)
    data, sr = sf.read(io.BytesIO(base64.b64decode(src)))
    assert (sr, data.shape) == (48_000, (4800,))


def test_markdown_table_formats_floats():
    md = plotting.markdown_table([{"a": 0.12345, "b": "x"}]).data
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 0.123 | x |"]
    assert "empty" in plotting.markdown_table([]).data


def test_plot_mels_grid_and_titles():
    cfg = SpectrogramConfig()
    mels = [torch.rand(1, 128, 94) for _ in range(3)]
    fig = plotting.plot_mels(mels, ["one", "two", "three"], cfg, ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["one", "two", "three"]
    assert fig.dpi == plotting.FIG_DPI


def test_history_plots():
    from sda_lab.training.history import History

    h = History(epoch=[0, 1], recon=[0.5, 0.25], raw_kl=[100.0, 3.0], kl=[100.0, 3.0],
                kl_weight=[0.0, 1.0], active_units=[10, 4], seconds=[1.0, 2.0],
                kl_per_dim=[0.05, 0.2, 2.0], train_recon=[0.3, 0.2], train_baseline=0.4,
                alarms=["collapse", ""], alarm_kind="not_validated")
    assert len(plotting.plot_history(h, title="run").axes) == 4
    fig = plotting.plot_history_with_baseline(h)
    assert "verdict: not_validated" in fig.axes[0].get_title()


def test_legends_are_readable():
    """No legend or annotation text below 8 points (at FIG_DPI they were unreadable)."""
    fig = plotting.plot_kl_schedules(20, warmup_fractions=(0.1, 0.3), n_cycles=4)
    sizes = [t.get_fontsize() for ax in fig.axes if ax.get_legend()
             for t in ax.get_legend().get_texts()]
    assert sizes and min(sizes) >= 8


def test_dimension_effects_plot_draws_the_median_and_the_band_over_starts():
    fx = torch.rand(5, 8) + 0.01  # (5 starts, 8 ranked dimensions)
    fig = plotting.plot_dimension_effects(fx, kl_per_rank=np.linspace(2, 0.1, 8))
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.median(fx.numpy(), 0))
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() >= float(fx.min()) - 1e-6 and band.max() <= float(fx.max()) + 1e-6
    assert len(fig.axes) == 2 and "KL" in fig.axes[1].get_ylabel()
