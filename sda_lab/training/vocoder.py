"""Training a run's own vocoder (:mod:`sda_lab.representation.vocoder`) and judging it.

Adversarial training as HiFi-GAN (Kong, Kim & Bae 2020; github.com/jik876/hifi-gan
``train.py``), with the multi-period and multi-scale discriminators of
:mod:`sda_lab.training.discriminators`:

- **losses**: least-squares GAN (discriminator ``(1 - D(y))^2 + D(G(x))^2``, generator
  ``(1 - D(G(x)))^2``), feature matching (L1 between the discriminators' feature maps of real
  and generated audio) weighted ``fm_weight`` (2), and the L1 distance between the mel of the
  generated audio and of the real audio weighted ``mel_weight`` (45). The mel is our own
  :class:`~sda_lab.representation.spectrogram.AudioSpectrogram` (its normalised values), so the
  vocoder learns to invert exactly the representation the VAE outputs.

:func:`train_vocoder` trains on random segments of ``segment_frames`` frames of the run's
training clips (a segment's mel frames are cut from the clip's mel; its audio is the
``segment_frames * hop`` samples from the segment's first frame), checkpoints everything a
resumed training needs in ``RUN/vocoder.pt``, then scores the run's held-out files: the plain mel
round trip (and the VAE's posterior mean) through (a) the run's own inversion without the
vocoder and (b) the vocoder, with :func:`sda_lab.training.audio_eval.evaluate_audio` (spectral
convergence, log-spectral distance, level, per file and mean, at the level the WAV is written).
The record says ``kept = "vocoder"`` only where the vocoder's mean spectral convergence AND
log-spectral distance of the mel round trip are both lower than the inversion's; else
``"inverter"``, and :meth:`Inverter.for_run
<sda_lab.representation.inverter.Inverter.for_run>` goes on hearing the run without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..core.progress import progress_bar
from ..representation.inverter import Inverter
from ..representation.vocoder import (VOCODER_FILE, HiFiGANGenerator, Vocoder, VocoderConfig,
                                      load_training_state, load_vocoder, save_vocoder)
from .audio_eval import FIGURES, evaluate_audio
from .discriminators import (MultiPeriodDiscriminator, MultiScaleDiscriminator,
                             discriminator_loss, feature_loss, generator_loss)

__all__ = ["VocoderData", "VocoderResult", "train_vocoder", "evaluate_vocoder", "training_step",
           "random_segments", "SAVE_EVERY_S"]

SAVE_EVERY_S = 60.0  # the checkpoint during training at most this often (and at the end)

@dataclass
class VocoderData:
    """What a vocoder trains and is judged on: a run's ``model`` (its VAE, eval mode),
    ``spectrogram``, every clip ``waveforms`` ``(N, 1, samples)`` with its file name ``files[i]``
    and mel ``mels`` ``(N, 1, n_mels, T)``, and the indices of the training and held-out clips
    (as :func:`sda_lab.studies.generate.load_run` gives them)."""

    model: object
    spectrogram: object
    waveforms: torch.Tensor
    files: Sequence[str]
    mels: torch.Tensor
    train_idx: list[int]
    val_idx: list[int]


@dataclass
class VocoderResult:
    """What :func:`train_vocoder` did: the ``vocoder`` (its ``history`` the record), why it
    ``stopped`` (``"budget"``, ``"max_steps"``), ``kept`` (``"vocoder"`` or ``"inverter"``),
    ``why`` (one sentence), and the held-out evaluations through each (``AudioEvaluation``)."""

    vocoder: Vocoder
    stopped: str
    kept: str
    why: str
    through_vocoder: object
    through_inverter: object


def random_segments(waveforms: torch.Tensor, mels: torch.Tensor, n: int, frames: int, hop: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random segments: mels ``(n, 1, n_mels, frames)`` cut from ``mels``
    ``(N, 1, n_mels, T)`` and their audio ``(n, 1, frames * hop)`` from ``waveforms``
    ``(N, 1, samples)`` (frame ``t`` starts at sample ``t * hop``; zero past the clip's end)."""
    total = mels.shape[-1]
    if total < frames:
        raise ValueError(f"segment_frames: expected at most the clips' {total} frames, got "
                         f"{frames}")
    clip = torch.randint(len(mels), (n,), generator=generator)
    start = torch.randint(total - frames + 1, (n,), generator=generator)
    audio = nn.functional.pad(waveforms, (0, max(0, total * hop - waveforms.shape[-1])))
    m = torch.stack([mels[c, :, :, s:s + frames] for c, s in zip(clip.tolist(),
                                                                  start.tolist())])
    y = torch.stack([audio[c, :, s * hop:(s + frames) * hop]
                     for c, s in zip(clip.tolist(), start.tolist())])
    return m.float(), y.float()  # (n, 1, n_mels, frames), (n, 1, frames * hop)


@dataclass
class _Parts:
    generator: HiFiGANGenerator
    mpd: MultiPeriodDiscriminator
    msd: MultiScaleDiscriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def _build(n_mels: int, config: VocoderConfig, seed: int) -> _Parts:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g = HiFiGANGenerator(n_mels, config)
        mpd, msd = MultiPeriodDiscriminator(config), MultiScaleDiscriminator(config)
    opt_g = torch.optim.AdamW(g.parameters(), config.lr, betas=config.betas)
    opt_d = torch.optim.AdamW([*mpd.parameters(), *msd.parameters()], config.lr,
                              betas=config.betas)
    return _Parts(g, mpd, msd, opt_g, opt_d)


def training_step(parts: _Parts, spectrogram, mel: torch.Tensor, y: torch.Tensor,
                  config: VocoderConfig, adversarial: bool) -> dict[str, float]:
    """One HiFi-GAN step on a batch: mel ``(B, 1, n_mels, F)``, audio ``(B, 1, F * hop)``.

    With ``adversarial``, the discriminators first take one step on real against generated
    audio; then the generator takes one on ``mel_weight`` x mel L1 (+ ``fm_weight`` x feature
    matching + LSGAN loss with ``adversarial``). Returns the losses (``mel_l1`` unweighted)."""
    g, out = parts.generator, {}
    y_hat = g(mel)  # (B, 1, F * hop)
    if adversarial:
        real_p, _ = parts.mpd(y)
        fake_p, _ = parts.mpd(y_hat.detach())
        real_s, _ = parts.msd(y)
        fake_s, _ = parts.msd(y_hat.detach())
        loss_d = discriminator_loss(real_p, fake_p) + discriminator_loss(real_s, fake_s)
        parts.opt_d.zero_grad()
        loss_d.backward()
        parts.opt_d.step()
        out["discriminator"] = float(loss_d.detach())
    with torch.no_grad():
        target = spectrogram.waveform_to_mel(y)  # (B, 1, n_mels, F + 1)
    mel_l1 = nn.functional.l1_loss(spectrogram.waveform_to_mel(y_hat), target)
    loss_g = config.mel_weight * mel_l1
    if adversarial:
        real_p, maps_rp = parts.mpd(y)
        fake_p, maps_fp = parts.mpd(y_hat)
        real_s, maps_rs = parts.msd(y)
        fake_s, maps_fs = parts.msd(y_hat)
        fm = feature_loss(maps_rp, maps_fp) + feature_loss(maps_rs, maps_fs)
        adv = generator_loss(fake_p) + generator_loss(fake_s)
        loss_g = loss_g + config.fm_weight * fm + adv
        out.update(feature_matching=float(fm.detach()), adversarial=float(adv.detach()))
    parts.opt_g.zero_grad()
    loss_g.backward()
    parts.opt_g.step()
    out.update(mel_l1=float(mel_l1.detach()), generator=float(loss_g.detach()))
    return out


def _figures(evaluation, path: str) -> dict[str, float]:
    return {f: evaluation.mean(path, f) for f in FIGURES}


def evaluate_vocoder(vocoder: Vocoder, data: VocoderData, run_dir: str | Path,
                     max_files: int = 12, progress: bool = False):
    """Score the held-out files (all clips' files when none were held out) through the vocoder
    and through the run's own inversion without it (:meth:`Inverter.for_run` with
    ``vocoder=False``: for the mel round trip the inverse of analysed mels, for the model the
    one fine-tuned on its decoded mels where kept), as
    :func:`~sda_lab.training.audio_eval.evaluate_audio` scores audio.
    Returns ``(through_vocoder, through_inverter)``, two ``AudioEvaluation``."""
    spec = data.spectrogram
    indices = data.val_idx or data.train_idx
    on = "validation" if data.val_idx else "training"
    train_mels = data.mels[data.train_idx]  # (N_train, 1, n_mels, T)
    kw = dict(on=on, max_files=max_files, max_clips=vocoder.config.eval_clips,
              progress=progress)
    args = (data.model, spec, data.waveforms, data.files, indices, train_mels)
    through_vocoder = evaluate_audio(*args, Inverter(spec, vocoder=vocoder), **kw)
    own = evaluate_audio(*args, Inverter.for_run(run_dir, spec, vocoder=False),
                         round_trip_inverter=Inverter.for_run(run_dir, spec, vocoder=False,
                                                              mels="analysed"), **kw)
    return through_vocoder, own


def _verdict(voc, inv) -> tuple[str, str]:
    v_sc, i_sc = (e.mean("mel_round_trip", "spectral_convergence") for e in (voc, inv))
    v_lsd, i_lsd = (e.mean("mel_round_trip", "log_spectral_distance_db") for e in (voc, inv))
    figures = (f"spectral convergence {v_sc:.3f} against {i_sc:.3f}, log-spectral distance "
               f"{v_lsd:.2f} against {i_lsd:.2f} dB ({voc.on} files, mel round trip)")
    if v_sc < i_sc and v_lsd < i_lsd:
        return "vocoder", f"the vocoder is kept: it beats the run's own inversion on both: {figures}"
    lost = " and ".join(n for n, lose in (("spectral convergence", not v_sc < i_sc),
                                          ("log-spectral distance", not v_lsd < i_lsd)) if lose)
    return "inverter", (f"the vocoder is not kept: it does not beat the run's own inversion on "
                        f"{lost}: {figures}")


def _check(budget_s, max_steps, clock) -> None:
    if budget_s is not None and not (isinstance(budget_s, (int, float)) and budget_s > 0
                                     and math.isfinite(budget_s)):
        raise ValueError(f"budget_s: expected a positive number of seconds, got {budget_s!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int)
                                  or max_steps < 0):
        raise ValueError(f"max_steps: expected a step count >= 0, got {max_steps!r}")
    if budget_s is None and max_steps is None:
        raise ValueError("budget_s, max_steps: expected at least one of them (training would "
                         "never end), got neither")
    if not callable(clock):
        raise ValueError(f"clock: expected a callable returning seconds (time.process_time), "
                         f"got {clock!r}")


def train_vocoder(run_dir: str | Path, data: VocoderData, config: VocoderConfig | None = None,
                  *, budget_s: float | None = None,
                  clock: Callable[[], float] = time.perf_counter, max_steps: int | None = None,
                  generator: torch.Generator | int | None = None, resume: bool = True,
                  progress: bool = False, max_files: int = 12) -> VocoderResult:
    """Train (or go on training) the run's vocoder in ``RUN/vocoder.pt``, then judge it.

    Parameters
    ----------
    run_dir : path
        The run folder; ``vocoder.pt`` is read (``resume``) and written there.
    data : VocoderData
        The run's clips, mels, split and VAE.
    config : VocoderConfig, optional
        Defaults to HiFi-GAN V2 at hop 512. On resume, the saved config is used and a
        different one given here is refused.
    budget_s : float, optional
        Seconds of training in this call, read on ``clock``; a step starts only while some is
        left (evaluation is not counted).
    clock : callable
        Seconds now: ``time.perf_counter`` (wall, default) or ``time.process_time`` (this
        process's CPU time, which holds on a shared machine).
    max_steps : int, optional
        The total step count (over every call) to stop at; 0 only evaluates.
    generator : torch.Generator or int, optional
        Draws the initial weights and the segments of a fresh training (default seed 0); a
        resumed one goes on with its saved random state.
    resume : bool
        Go on from ``RUN/vocoder.pt`` where it holds a training state; False starts over.

    Each call adds its training seconds (CPU and wall) to ``history``; the generator,
    discriminators, optimisers, step, seconds and random state are saved every
    :data:`SAVE_EVERY_S` seconds, at the end, and on Ctrl-C (after the last finished step; the
    ``KeyboardInterrupt`` is raised again). The held-out evaluation appends its figures to
    ``history["evaluations"]`` and sets ``history["kept"]`` (module docstring).

    Raises
    ------
    ValueError
        One line, before training: a bad budget or step count, a config whose hop is not the
        spectrogram's, a saved vocoder of another spectrogram or config, no training clips.
    """
    _check(budget_s, max_steps, clock)
    spec = data.spectrogram
    path = Path(run_dir) / VOCODER_FILE
    if not data.train_idx:
        raise ValueError("data: expected training clips, got none")
    saved = load_training_state(path) if resume and path.is_file() else None
    if saved is not None:
        old = load_vocoder(path)
        old.check_spectrogram(spec)
        if config is not None and asdict(config) != asdict(old.config):
            raise ValueError(f"config: RUN's vocoder was trained with another config "
                             f"({path}); start over (restart) to change it")
        config, history = old.config, old.history
    else:
        config, history = config or VocoderConfig(), {}
    if config.hop_length != spec.config.hop_length:
        raise ValueError(f"upsample_rates: expected a product equal to the spectrogram's hop "
                         f"({spec.config.hop_length}), got {config.upsample_rates} "
                         f"(hop {config.hop_length})")
    gen = (generator if isinstance(generator, torch.Generator)
           else torch.Generator().manual_seed(0 if generator is None else int(generator)))
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen)) if saved is None else 0
    parts = _build(spec.config.n_mels, config, seed)
    step = 0
    if saved is not None:
        parts.generator.load_state_dict(old.generator.state_dict())
        parts.mpd.load_state_dict(saved["mpd"])
        parts.msd.load_state_dict(saved["msd"])
        parts.opt_g.load_state_dict(saved["opt_g"])
        parts.opt_d.load_state_dict(saved["opt_d"])
        gen.set_state(saved["rng"])
        step = int(saved["step"])
    history.setdefault("steps", 0)
    history.setdefault("cpu_seconds", 0.0)
    history.setdefault("wall_seconds", 0.0)
    history.setdefault("evaluations", [])
    history.setdefault("kept", None)
    history.setdefault("losses", [])
    vocoder = Vocoder(parts.generator, asdict(spec.config), config, history)
    waves = data.waveforms[data.train_idx].float()  # (N_train, 1, samples)
    mels = data.mels[data.train_idx].float()  # (N_train, 1, n_mels, T)
    spec = spec.cpu() if hasattr(spec, "cpu") else spec

    def save() -> None:
        state = {"mpd": parts.mpd.state_dict(), "msd": parts.msd.state_dict(),
                 "opt_g": parts.opt_g.state_dict(), "opt_d": parts.opt_d.state_dict(),
                 "step": step, "rng": gen.get_state()}
        history["steps"] = step
        save_vocoder(path, vocoder, state)

    c0, cpu0, wall0 = clock(), time.process_time(), time.perf_counter()
    cpu_base, wall_base = history["cpu_seconds"], history["wall_seconds"]
    last_save = wall0
    stopped = "max_steps"
    bar = None
    if progress:
        bar = progress_bar(desc="vocoder", unit="step", initial=step, total=max_steps)
    parts.generator.train()
    try:
        while max_steps is None or step < max_steps:
            if budget_s is not None and clock() - c0 >= budget_s:
                stopped = "budget"
                break
            mel, y = random_segments(waves, mels, config.batch_size, config.segment_frames,
                                     config.hop_length, gen)
            losses = training_step(parts, spec, mel, y, config, step >= config.adversarial_start)
            step += 1
            history["cpu_seconds"] = cpu_base + time.process_time() - cpu0
            history["wall_seconds"] = wall_base + time.perf_counter() - wall0
            history["losses"].append({"step": step, **{k: round(v, 5)
                                                       for k, v in losses.items()}})
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            if time.perf_counter() - last_save >= SAVE_EVERY_S:
                save()
                last_save = time.perf_counter()
    except KeyboardInterrupt:
        save()
        raise
    finally:
        if bar is not None:
            bar.close()
    save()
    parts.generator.eval()
    through_vocoder, through_inverter = evaluate_vocoder(vocoder, data, run_dir, max_files,
                                                         progress)
    kept, why = _verdict(through_vocoder, through_inverter)
    history["kept"], history["why"] = kept, why
    history["evaluations"].append({
        "step": step, "cpu_seconds": history["cpu_seconds"],
        "wall_seconds": history["wall_seconds"], "on": through_vocoder.on,
        "files_scored": len(through_vocoder.files),
        **{f"{who}_{path}": _figures(e, path) for who, e in
           (("vocoder", through_vocoder), ("inverter", through_inverter))
           for path in ("mel_round_trip", "model")},
        "inverter": through_inverter.inversion, "kept": kept})
    save()
    return VocoderResult(vocoder, stopped, kept, why, through_vocoder, through_inverter)
