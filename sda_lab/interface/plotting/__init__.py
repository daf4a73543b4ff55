"""Plots, inline audio and small tables for the notebooks: every figure sda-lab draws.

Figures are drawn small (``FIG_DPI``) and audio is embedded as 16-bit FLAC, so committed
notebooks stay a few MB. Every function returns what it made, so a caller can save or test it.
"""

from ._style import FIG_DPI
from .inline import audio_html, audio_player, audio_row, flac_bytes, markdown_table
from .mels import (plot_durations, plot_feature_maps, plot_mels, plot_round_trips,
                   plot_value_histogram, plot_value_histograms, show_mel)
from .sweeps import (RD_MARKERS, plot_descriptor_heatmap, plot_dimension_effects,
                     plot_kl_per_dim, plot_rate_distortion, plot_sweep_curves, plot_sweep_finals)
from .training import plot_history, plot_history_with_baseline, plot_kl_schedules

__all__ = [
    "FIG_DPI", "audio_html", "audio_player", "audio_row", "flac_bytes", "markdown_table",
    "plot_durations", "plot_feature_maps", "plot_mels", "plot_round_trips",
    "plot_value_histogram", "plot_value_histograms", "show_mel", "RD_MARKERS",
    "plot_descriptor_heatmap", "plot_dimension_effects", "plot_kl_per_dim",
    "plot_rate_distortion", "plot_sweep_curves", "plot_sweep_finals", "plot_history",
    "plot_history_with_baseline", "plot_kl_schedules",
]
