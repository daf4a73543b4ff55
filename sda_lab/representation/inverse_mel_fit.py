"""Fitting a learned inverse mel (:mod:`sda_lab.representation.inverse_mel`, the idea and its
sources): the supervised pairs (mel, ``|STFT|``) of the clips the VAE trains on, or a model's
decoded mels of them; the start's choice by the audio it gives; the loss on the linear magnitude
(spectral convergence plus the L1 distance of the log-magnitudes, as multi-resolution STFT
losses are: Yamamoto et al. 2020, Parallel WaveGAN); the training loop, kept at its best
held-out loss.

Shapes: mel ``(B, 1, n_mels, T)``, magnitude ``(B, n_stft, T)``, waveform ``(B, 1, samples)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace

import torch

from ..core._checks import check_frames, check_mel, check_waveform
from .inverse_mel import (STARTS, InverseMel, InverseMelConfig, InverseMelNet, _apply, _floor,
                          _start_magnitude, stft_magnitude)
from .metrics import spectral_convergence
from .phase import griffin_lim

__all__ = ["fit_inverse_mel", "magnitude_loss", "start_audio_sc"]


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
            print(f"inverse mel: step {step}, loss on the fit clips {losses[-1]:.4f}")
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
