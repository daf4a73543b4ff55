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

How it compares with NNLS on held-out files, per material: ``benchmarks/bench_hearing.py`` and
``benchmarks/RESULTS.md``; every path scored side by side:
:func:`sda_lab.studies.evaluate.render_paths` and
:func:`sda_lab.studies.evaluate.compare_inversions`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from ..core._checks import check_frames, check_mel, check_waveform
from ..core._io import atomic_torch_save
from .harmonic import HarmonicConfig, harmonic_power
from .metrics import spectral_convergence
from .phase import PHASE_INITS, griffin_lim

__all__ = ["INVERSE_MEL_FILE", "DECODED_INVERSE_MEL_FILE", "STARTS", "InverseMelConfig", "InverseMelNet", "InverseMel",
           "stft_magnitude", "start_audio_sc", "fit_inverse_mel", "save_inverse_mel",
           "load_inverse_mel", "mel_to_magnitude", "mel_to_waveform_learned", "magnitude_loss"]

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


@torch.no_grad()
def start_audio_sc(spec, waveforms: torch.Tensor, mels: torch.Tensor, start: str,
                   nnls_iters: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A start heard: the ``start`` magnitude ``(B, n_stft, T)`` of ``mels``
    ``(B, 1, n_mels, T)`` (the mels of ``waveforms`` ``(B, 1, samples)``), then PGHI and fast
    Griffin-Lim (``spec.config.griffin_lim_iters``; random phases of the smallest coefficients
    from ``seed``), scored by spectral convergence against ``waveforms``: ``(magnitude, SC (B,))``.
    """
    c = spec.config
    mag = _start_magnitude(spec, mels, nnls_iters, start)  # (B, n_stft, T)
    y = griffin_lim(mag, c.n_fft, c.hop_length, c.griffin_lim_iters, init="pghi",
                    length=waveforms.shape[-1],
                    generator=torch.Generator().manual_seed(seed))  # (B, samples)
    return mag, spectral_convergence(waveforms, y[:, None], c.n_fft, c.hop_length)  # (B,)


def _apply(net: InverseMelNet, mel: torch.Tensor, start: torch.Tensor, floor: float
           ) -> torch.Tensor:
    log_mag = torch.log(start + floor) + net(mel)  # (B, n_stft, T)
    return (torch.exp(log_mag) - floor).clamp(min=0)  # (B, n_stft, T)


def magnitude_loss(estimate: torch.Tensor, target: torch.Tensor, floor: float,
                   log_weight: float = 1.0) -> torch.Tensor:
    """Spectral convergence (mean over clips) + ``log_weight`` x mean |log(S+floor) - log(S_hat+floor)|."""
    sc = ((target - estimate).flatten(1).norm(dim=1)
          / target.flatten(1).norm(dim=1).clamp(min=1e-8)).mean()
    log_l1 = (torch.log(target + floor) - torch.log(estimate + floor)).abs().mean()
    return sc + log_weight * log_l1


def _pairs(spec, x: torch.Tensor, nnls_iters: int, start: str = "nnls",
           mels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mels ``(N, 1, n_mels, T)``, starts and targets ``(N, n_stft, T)`` of clips ``x``; the
    mels are ``x``'s own unless ``mels`` gives the inputs (a model's decoded mels of ``x``)."""
    with torch.no_grad():
        if mels is None:
            mels = torch.cat([spec.waveform_to_mel(x[i:i + 64])
                              for i in range(0, len(x), 64)])  # (N, 1, n_mels, T)
        else:
            mels = check_mel(mels, spec.config.n_mels, "mels").float().cpu()
            if mels.shape[0] != len(x) or mels.shape[-1] != spec.get_mel_shape(x.shape[-1])[1]:
                raise ValueError(f"mels: expected one mel of {x.shape[-1]} samples' frames per "
                                 f"clip, shape ({len(x)}, 1, {spec.config.n_mels}, "
                                 f"{spec.get_mel_shape(x.shape[-1])[1]}), got "
                                 f"{tuple(mels.shape)}")
        check_frames(mels.shape[-1], None, spec.config.n_fft, spec.config.hop_length)
        starts = torch.cat([_start_magnitude(spec, mels[i:i + 64], nnls_iters, start)
                            for i in range(0, len(x), 64)])  # (N, n_stft, T)
        return mels, starts, stft_magnitude(spec, x)


def _choose_start(spec, x: torch.Tensor, config: InverseMelConfig) -> tuple[str, dict]:
    """``config.start``, or for ``"auto"`` the start whose audio (the start's magnitude, PGHI,
    fast Griffin-Lim: the path the explorer plays) has the lower spectral convergence against
    clips ``x`` (mean over up to ``config.choose_clips`` of them): ``(start, {start: SC})``.

    The audio, not the magnitude: on tonal clips the harmonic start's magnitude can be no
    closer to ``|S|`` than NNLS's while its audio is (its peaks make a more consistent STFT
    for the phase step); and SC, not the training loss, whose log-magnitude term weighs a
    -90 dB bin like a loud one."""
    if config.start != "auto":
        return config.start, {}
    every = torch.linspace(0, len(x) - 1, min(config.choose_clips, len(x))).long()
    pick = x[every]  # (n, 1, samples), spread over the clips
    with torch.no_grad():
        mels = spec.waveform_to_mel(pick)  # (n, 1, n_mels, T)
    scores = {name: float(start_audio_sc(spec, pick, mels, name, config.nnls_iters,
                                         config.seed)[1].mean())
              for name in STARTS}
    return min(scores, key=scores.get), scores


def fit_inverse_mel(spec, waveforms: torch.Tensor, config: InverseMelConfig | None = None,
                    progress: bool = False, val_waveforms: torch.Tensor | None = None,
                    eval_every: int = 25, mels: torch.Tensor | None = None,
                    val_mels: torch.Tensor | None = None,
                    init: InverseMel | None = None) -> InverseMel:
    """Train an inverse mel on clips ``(N, 1, samples)`` in ``spec``'s representation.

    The pairs are ``(spec.waveform_to_mel(x), |STFT(x)|)``, or ``(mels[i], |STFT(x_i)|)`` where
    ``mels`` ``(N, 1, n_mels, T)`` gives other inputs for the same targets (``val_mels`` for
    ``val_waveforms``): a model's decoded mels of the clips, so that the inverse learns to turn
    what the model makes into the clips' spectra, as a vocoder is fine-tuned on an acoustic
    model's predicted mels (Shen et al. 2018, Tacotron 2, Sec. 3.2; Kong et al. 2020, HiFi-GAN,
    Sec. 4.4). ``init``: start from that inverse's weights, architecture and start (no start
    is chosen). ``history["inputs"]`` says which inputs: ``"analysed"``
    (the clips' own mels) or ``"given"``. Training runs on the CPU until
    ``config.max_seconds`` (counted from this call, start choice and pairs included) or
    ``config.max_steps``, in batches of ``config.batch_size`` clips drawn with ``config.seed``
    (the network's initial weights too, inside ``torch.random.fork_rng``: the caller's random
    state is left as it was). ``history`` holds the loss of every step and the
    untrained (start) loss on the first batch (``start_loss``). Held-out files are the caller's
    business: pass only training clips (:func:`sda_lab.data.split_by_file`).
    ``config.start="auto"`` renders up to ``config.choose_clips`` of all the clips given
    (``waveforms`` and ``val_waveforms``: a start has nothing fitted to them) through each start,
    PGHI and fast Griffin-Lim and keeps the start with the lower spectral convergence
    (``history["start_sc"]``, ``InverseMel.start``).

    With ``val_waveforms`` (clips of other files than the training ones), the loss on them is
    measured before training (the start, step 0), every ``eval_every`` steps and at the
    end, and the weights with the lowest one are kept (``history["best_step"]``, ``0``: the
    inverse stays its start), so the inverse is never worse than its start on those files.

    Raises
    ------
    TypeError, ValueError
        On a bad waveform batch (shape, dtype, NaN, shorter than ``n_fft``) or config, or fewer
        than ``spec.config.min_frames`` frames per clip.
    """
    t0 = time.perf_counter()
    config = config or InverseMelConfig()
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
    x = check_waveform(waveforms, spec.config.n_fft, "waveforms").float().cpu()
    vx = None
    if val_waveforms is not None:
        vx = check_waveform(val_waveforms, spec.config.n_fft, "val_waveforms").float().cpu()
    gen = torch.Generator().manual_seed(config.seed)
    floor = _floor(spec)
    # a start has nothing fitted to the clips: all of them (fit and held-back) choose it
    if init is not None:  # its architecture and start; the budget, lr and seed are config's
        init.check_spectrogram(spec)
        config = replace(config, hidden=init.config.hidden, kernel_size=init.config.kernel_size,
                         layers=init.config.layers, start=init.start)
        start, start_sc = init.start, {}
    else:
        start, start_sc = _choose_start(spec, x if vx is None else torch.cat([x, vx]), config)
    given = mels is not None
    mels, starts, targets = _pairs(spec, x, config.nnls_iters, start, mels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = InverseMelNet(spec.config.n_mels, spec.config.n_stft, config)
    if init is not None:
        net.load_state_dict(init.net.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr)
    losses: list[float] = []
    step = 0
    first = torch.randperm(len(x), generator=gen)[:config.batch_size]
    with torch.no_grad():
        start_loss = float(magnitude_loss(starts[first], targets[first], floor,
                                          config.log_weight))
    val = None if vx is None else _pairs(spec, vx, config.nnls_iters, start, val_mels)
    val_losses: list[tuple[int, float]] = []
    best = (math.inf, 0, None)

    def validate() -> None:
        nonlocal best
        net.eval()
        with torch.no_grad():
            loss = float(magnitude_loss(_apply(net, val[0], val[1], floor), val[2], floor,
                                        config.log_weight))
        net.train()
        val_losses.append((step, loss))
        if loss < best[0]:
            best = (loss, step, {k: v.clone() for k, v in net.state_dict().items()})

    if val is not None:
        validate()
    while True:
        if config.max_steps is not None and step >= config.max_steps:
            break
        if time.perf_counter() - t0 >= config.max_seconds:
            break
        idx = torch.randperm(len(x), generator=gen)[:config.batch_size]
        est = _apply(net, mels[idx], starts[idx], floor)  # (b, n_stft, T)
        loss = magnitude_loss(est, targets[idx], floor, config.log_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if progress and step % 50 == 0:
            print(f"inverse mel: step {step}, loss {losses[-1]:.4f}")
        if val is not None and step % eval_every == 0:
            validate()
    history = {"loss": losses, "start_loss": start_loss, "steps": step,
               "seconds": time.perf_counter() - t0, "clips": len(x), "start": start,
               "start_sc": start_sc, "inputs": "given" if given else "analysed"}
    if val is not None:
        if val_losses[-1][0] != step:
            validate()
        net.load_state_dict(best[2])
        history.update(val_loss=val_losses, best_step=best[1], val_clips=len(val[0]))
    net.eval()
    return InverseMel(net, asdict(spec.config), config, history, start)


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
