"""A learned inverse mel: normalised mel -> linear STFT magnitude, trained on the user's clips.

Shapes throughout:

    mel        (B, 1, n_mels, T)   normalised mel of a spectrogram (an
                                   :class:`~sda_lab.representation.spectrogram.AudioSpectrogram`)
    magnitude  (B, n_stft, T)      linear STFT magnitude |S| (Hann window, the spectrogram's
                                   n_fft and hop), n_stft = n_fft // 2 + 1
    waveform   (B, 1, samples)

The idea and its sources
------------------------
Tacotron's post-net (Wang et al. 2017, "Tacotron: Towards end-to-end speech synthesis")
predicts the linear spectrogram from the mel before Griffin-Lim; FreeV (Lv et al. 2024) starts
from the filterbank's pseudo-inverse and learns only the residual, which makes the untrained
network exactly the classical answer. Here the start is the NNLS estimate the default
inversion uses (``sqrt(spec.mel_to_linear(mel, nnls_iters))``), and a small 1-D convolutional
network over time (mel bands as channels) predicts a residual on its log-magnitude::

    log(|S_hat| + floor) = log(sqrt(NNLS(mel)) + floor) + net(mel)

with the last layer initialised to zero (so the untrained inverse is its start). The start is
NNLS or, with ``InverseMelConfig.start="harmonic"``, NNLS whose energy above a few kHz sits on
the partials of each frame's pitch (:mod:`sda_lab.representation.harmonic`); ``"auto"`` (the
default) takes whichever of the two gives audio (+ PGHI + fast Griffin-Lim) closer to the training
files before any training, so a folder of tones gets the harmonic start and one of noisy hits keeps
NNLS. ``floor`` is the
magnitude 100 dB below the spectrogram's Parseval bound. The loss is on the linear magnitude,
as multi-resolution STFT losses are (Yamamoto et al. 2020, Parallel WaveGAN): spectral
convergence ``||S - S_hat||_F / ||S||_F`` plus the L1 distance of the log-magnitudes. The
supervised pairs (mel, |STFT|) come free from the clips the VAE trains on. A linear (ridge)
map from log-mel to log-magnitude was tried before and failed (issue 20: SC 1.2).

Fitting it (the pairs, the start's choice, the loss, the loop):
:mod:`sda_lab.representation.inverse_mel_fit`. How it compares with NNLS on held-out files, per
material: ``benchmarks/bench_hearing.py`` and
``benchmarks/RESULTS.md``; every path scored side by side:
:func:`sda_lab.studies.evaluate.render_paths` and
:func:`sda_lab.studies.evaluate.compare_inversions`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..core._checks import check_frames, check_mel, check_waveform
from ..core._io import atomic_torch_save
from .harmonic import HarmonicConfig, harmonic_power
from .phase import PHASE_INITS, griffin_lim

__all__ = ["INVERSE_MEL_FILE", "DECODED_INVERSE_MEL_FILE", "STARTS", "InverseMelConfig",
           "InverseMelNet", "InverseMel", "stft_magnitude", "save_inverse_mel",
           "load_inverse_mel", "mel_to_magnitude", "mel_to_waveform_learned"]

INVERSE_MEL_FILE = "inverse_mel.pt"  # its name inside a run folder
DECODED_INVERSE_MEL_FILE = "decoded_inverse_mel.pt"  # the one fitted to the model's decoded mels
FORMAT = 1
FLOOR_DB = -100.0  # the log-magnitude floor, dB below the Parseval bound
STARTS = ("nnls", "harmonic")  # the magnitude the learned residual starts from; or "auto"


@dataclass
class InverseMelConfig:
    """The learned inverse's size and training budget.

    ``max_seconds`` (default 120) and ``max_steps`` both end training; whichever comes first.
    ``max_seconds`` is the wall time of the whole fit: choosing the start and computing the
    pairs count, so a training step starts only while time is left. ``nnls_iters`` is the NNLS start's FISTA steps.
    ``start``: ``"nnls"``, ``"harmonic"`` (:func:`sda_lab.representation.harmonic.harmonic_power`
    on the NNLS answer) or ``"auto"``: the one whose audio (+ PGHI + fast Griffin-Lim) has the
    lower spectral convergence on the training clips (fit and held-back) before training.

    Raises
    ------
    ValueError
        On non-positive sizes or budgets, a negative ``nnls_iters`` or an unknown ``start``.
    """

    hidden: int = 256
    kernel_size: int = 5
    layers: int = 2
    nnls_iters: int = 100
    lr: float = 1e-3
    batch_size: int = 16
    max_seconds: float = 120.0
    max_steps: int | None = None
    log_weight: float = 1.0  # weight of the log-magnitude L1 beside spectral convergence
    seed: int = 0
    start: str = "auto"
    choose_clips: int = 16  # clips, spread over the training set, that choose the "auto" start

    def __post_init__(self) -> None:
        for name in ("hidden", "kernel_size", "layers", "batch_size", "choose_clips"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-length convolution), got "
                             f"{self.kernel_size}")
        if self.nnls_iters < 0:
            raise ValueError(f"nnls_iters must be 0 or more, got {self.nnls_iters}")
        if not (self.max_seconds > 0 and math.isfinite(self.max_seconds)):
            raise ValueError(f"max_seconds must be a positive number, got {self.max_seconds!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be positive or None, got {self.max_steps!r}")
        if self.start not in (*STARTS, "auto"):
            raise ValueError(f"start must be one of {(*STARTS, 'auto')}, got {self.start!r}")
        if not self.lr > 0 or not self.log_weight >= 0:
            raise ValueError(f"need lr > 0 and log_weight >= 0, got lr={self.lr}, "
                             f"log_weight={self.log_weight}")


class InverseMelNet(nn.Module):
    """``net(mel)``: the log-magnitude residual ``(B, n_stft, T)`` from a mel ``(B, 1, n_mels, T)``.

    ``layers`` same-length Conv1d + GELU over time (mel bands as channels), then a 1x1 Conv1d
    to ``n_stft`` channels initialised to zero.
    """

    def __init__(self, n_mels: int, n_stft: int, config: InverseMelConfig) -> None:
        super().__init__()
        blocks, width = [], n_mels
        for _ in range(config.layers):
            blocks += [nn.Conv1d(width, config.hidden, config.kernel_size,
                                 padding=config.kernel_size // 2), nn.GELU()]
            width = config.hidden
        self.body = nn.Sequential(*blocks)
        self.out = nn.Conv1d(width, n_stft, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.body(mel[:, 0])  # (B, hidden, T)
        return self.out(h)  # (B, n_stft, T)


@dataclass
class InverseMel:
    """A trained inverse: the network, the representation it inverts, its config and losses,
    and the start its residual is added to (``"nnls"`` or ``"harmonic"``, ``config.start``
    resolved)."""

    net: InverseMelNet
    spectrogram_config: dict
    config: InverseMelConfig
    history: dict = field(default_factory=dict)
    start: str = "nnls"

    def check_spectrogram(self, spec) -> None:
        """``ValueError`` (one line) unless ``spec`` is the representation this was trained on."""
        if asdict(spec.config) != self.spectrogram_config:
            diff = {k: (v, asdict(spec.config).get(k)) for k, v in self.spectrogram_config.items()
                    if asdict(spec.config).get(k) != v}
            raise ValueError(f"the inverse mel was trained on another spectrogram config: "
                             f"(trained, given) differ in {diff}")


def _floor(spec) -> float:
    return math.sqrt(spec.max_mel_power * 10 ** (FLOOR_DB / 10))


def stft_magnitude(spec, waveform: torch.Tensor) -> torch.Tensor:
    """``|STFT|`` of ``waveform (B, 1, samples)`` as ``spec`` computes its mel: ``(B, n_stft, T)``."""
    c = spec.config
    x = check_waveform(waveform, c.n_fft).float()
    window = torch.hann_window(c.n_fft, device=x.device)
    return torch.stft(x[:, 0], c.n_fft, c.hop_length, window=window,
                      return_complex=True).abs()  # (B, n_stft, T)


def _start_magnitude(spec, mel: torch.Tensor, nnls_iters: int, start: str) -> torch.Tensor:
    """The start ``(B, n_stft, T)`` of a mel ``(B, 1, n_mels, T)``: sqrt(NNLS) or harmonic."""
    power = spec.mel_to_linear(mel, nnls_iters).clamp(min=0)  # (B, n_stft, T)
    if start == "harmonic":
        power = harmonic_power(spec, mel, power, HarmonicConfig())  # (B, n_stft, T)
    elif start != "nnls":
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    return power.sqrt()


def _apply(net: InverseMelNet, mel: torch.Tensor, start: torch.Tensor, floor: float
           ) -> torch.Tensor:
    log_mag = torch.log(start + floor) + net(mel)  # (B, n_stft, T)
    return (torch.exp(log_mag) - floor).clamp(min=0)  # (B, n_stft, T)


def save_inverse_mel(path: str | Path, inverse: InverseMel) -> Path:
    """Write ``inverse`` to ``path`` atomically (``sda_lab.core._io.atomic_torch_save``)."""
    payload = {"format": FORMAT, "kind": "sda_lab.inverse_mel",
               "config": asdict(inverse.config), "spectrogram_config": inverse.spectrogram_config,
               "state": {k: v.detach().cpu() for k, v in inverse.net.state_dict().items()},
               "history": inverse.history, "start": inverse.start}
    return atomic_torch_save(path, payload)


def load_inverse_mel(path: str | Path) -> InverseMel:
    """Read what :func:`save_inverse_mel` wrote (on the CPU, eval mode).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        One line: not readable, not an inverse mel, another format, or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"inverse mel not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable inverse mel "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from exc
    if not isinstance(payload, dict) or payload.get("kind") != "sda_lab.inverse_mel":
        raise ValueError(f"{path} is not an sda-lab inverse mel (no kind 'sda_lab.inverse_mel')")
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} has inverse-mel format {payload.get('format')}, this sda-lab "
                         f"reads {FORMAT}")
    config = InverseMelConfig(**payload["config"])
    sc = payload["spectrogram_config"]
    net = InverseMelNet(sc["n_mels"], sc["n_fft"] // 2 + 1, config)
    try:
        net.load_state_dict(payload["state"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the saved weights do not fit the network its config "
                         f"describes ({str(exc).splitlines()[0]})") from exc
    start = payload.get("start", "nnls")  # a file without a start holds an NNLS-start inverse
    if start not in STARTS:
        raise ValueError(f"{path}: unknown start {start!r} (this sda-lab knows {STARTS})")
    net.eval()
    return InverseMel(net, sc, config, payload.get("history") or {}, start)


@torch.no_grad()
def mel_to_magnitude(spec, mel: torch.Tensor, inverse: InverseMel | None = None,
                     start: str = "nnls") -> torch.Tensor:
    """The linear magnitude ``(B, n_stft, T)`` of a mel ``(B, 1, n_mels, T)``: learned where
    ``inverse`` is given (from its own start), else ``start``: ``sqrt(NNLS)`` with
    ``spec.config.nnls_iters`` steps (``"nnls"``) or the harmonic start (``"harmonic"``,
    :mod:`sda_lab.representation.harmonic`)."""
    mel = check_mel(mel, spec.config.n_mels)
    if inverse is None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        return _start_magnitude(spec, mel, spec.config.nnls_iters, start)
    inverse.check_spectrogram(spec)
    device = next(inverse.net.parameters()).device
    m = mel.float().to(device)  # (B, 1, n_mels, T)
    begin = _start_magnitude(spec, m, inverse.config.nnls_iters, inverse.start)  # (B, n_stft, T)
    return _apply(inverse.net, m, begin, _floor(spec))  # (B, n_stft, T)


def mel_to_waveform_learned(spec, inverse: InverseMel | None, mel: torch.Tensor,
                            phase: str = "pghi", length: int | None = None,
                            n_iter: int | None = None,
                            generator: torch.Generator | None = None,
                            start: str = "nnls") -> torch.Tensor:
    """Mel ``(B, 1, n_mels, T)`` -> waveform ``(B, 1, samples)`` through :func:`mel_to_magnitude`
    (learned, or ``start`` when ``inverse`` is None) and fast Griffin-Lim
    (:func:`sda_lab.representation.phase.griffin_lim`) from a ``phase`` start: ``"pghi"``,
    ``"random"`` or ``"zero"``; ``n_iter`` defaults to ``spec.config.griffin_lim_iters``.

    Raises
    ------
    ValueError
        On a bad mel, too few frames, a ``length`` that does not fit, an unknown ``phase``, or
        an inverse trained on another spectrogram config.
    """
    mel = check_mel(mel, spec.config.n_mels)
    check_frames(mel.shape[-1], length, spec.config.n_fft, spec.config.hop_length)
    if phase not in PHASE_INITS:
        raise ValueError(f"phase must be one of {PHASE_INITS}, got {phase!r}")
    c = spec.config
    mag = mel_to_magnitude(spec, mel, inverse, start)  # (B, n_stft, T)
    wave = griffin_lim(mag, c.n_fft, c.hop_length, c.griffin_lim_iters if n_iter is None
                       else n_iter, init=phase, length=length, generator=generator)  # (B, samples)
    return wave.unsqueeze(1).to(mel.device, mel.dtype)  # (B, 1, samples)
