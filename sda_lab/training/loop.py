"""The training loop for :class:`~sda_lab.model.vae.ConvVAE`: a loop, not a framework.

``train(model, mels, config, ...)`` is a short loop of an epoch step (AdamW, gradient-norm
clipping, the KL weight from :mod:`sda_lab.model.losses`' schedules, optional augmentation) and
an evaluation step (eval-mode recon on training and validation clips, active units), then small
hooks: the live state in the progress bar and the last and best checkpoints (:class:`Sinks`).
When it ends (epochs done, or a step or minute budget spent) the run gets one verdict
(:func:`sda_lab.training.diagnostics.verdict`), never a warning during training. A diverging run
raises :class:`TrainingDiverged`; a Ctrl-C stops it at a step boundary, saves, and raises
:class:`~sda_lab.training.resume.TrainingInterrupted`; its last checkpoint goes on with
``train(..., resume=load_checkpoint(path))``. Randomness: :mod:`sda_lab.training.resume`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..core.progress import progress_bar
from ..core.utils import pick_device
from ..data.augment import augment_mels, augment_waveforms, mixup_waveforms
from ..data.split import check_training_clips
from ..model.losses import active_units, kl_per_dimension
from ..model.vae import ConvVAE, VAEConfig
from .callbacks import (BestCheckpoint, LastCheckpoint, LiveState, Sinks, TrainState,
                        weight_average)
from .checkpoint import Checkpoint, best_path_for
from .config import EVAL_STEP_SHARE, TrainConfig
from .diagnostics import eval_recon, mean_mel_baseline, mean_mel_sc_baseline, verdict
from .history import History
from .posterior import run_loss
from .resume import (InterruptRequest, TrainingInterrupted, forked_rng, restore, seed_global,
                     spent_limits)


class TrainingDiverged(RuntimeError):
    """Raised when training diverges: the loss, or the model's outputs, became NaN or Inf."""


def _diverged(config: TrainConfig, epoch: int, step: int, step_count: int, what: str,
              checkpoint_path) -> TrainingDiverged:
    kept = (f"; the last good checkpoint is kept at {checkpoint_path}" if checkpoint_path
            and Path(checkpoint_path).exists() else "")
    return TrainingDiverged(
        f"training diverged in epoch {epoch + 1} (its batch {step + 1}, optimiser step "
        f"{step_count + 1}) "
        f"with lr {config.lr:g}: {what}; try a lower learning rate (lr / --lr, e.g. "
        f"{config.lr / 10:g}) or a tighter gradient clip (grad_clip, now {config.grad_clip:g})"
        + kept)


def _check_batch(x: torch.Tensor, name: str, like: torch.Tensor | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, 1, n_mels, T) batch, got "
                         f"{tuple(x.shape)}")
    if like is not None and x.shape[1:] != like.shape[1:]:
        raise ValueError(f"{name} {tuple(x.shape)} must match the training mels "
                         f"{tuple(like.shape)} after the first axis")


# -- the two steps ----------------------------------------------------------------------------


def _schedule_progress(s: TrainState, budget_s: float | None) -> float:
    """The KL schedule's progress in [0, 1]: steps over the planned steps, or this call's share
    of the minute budget on top of where a resumed run stood, whichever is further."""
    p = s.step_count / s.planned if math.isfinite(s.planned) else 0.0
    if budget_s is not None:
        used = (time.perf_counter() - s.t_start) / budget_s
        p = max(p, s.progress0 + (1.0 - s.progress0) * used)
    return min(p, 1.0)


def _eval_reserve(s: TrainState, step_s: float) -> float:
    """Seconds to keep for the evaluation and checkpoints after the last step: the last one's
    time, or before any, an estimate from a step's."""
    if s.eval_s is not None:
        return s.eval_s
    n = s.data.shape[0] + (0 if s.val is None else s.val.shape[0])
    return EVAL_STEP_SHARE * step_s * math.ceil(n / s.config.batch_size)


def _epoch_step(s: TrainState, bar, budget_s, augment, checkpoint_path, interrupt
                ) -> list[float] | None:
    """Optimiser steps from ``s.next_batch`` to the end of the epoch (a budget or a Ctrl-C may
    end it early, setting ``s.stop``; the epoch's order is then kept for a resumed run);
    returns the sample-weighted means of loss, MSE, optimised KL and raw KL, or None when no
    step was taken."""
    c, model, n = s.config, s.model, s.data.shape[0]
    model.train()
    if not c.budgeted:
        s.weight = c.kl_weight_at(s.epoch)
    if s.order is None:
        s.order, s.next_batch = torch.randperm(n, generator=s.generator).to(s.data.device), 0
    sums = torch.zeros(4, device=s.data.device)  # loss, recon, kl, raw kl (summed over samples)
    seen, step_s = 0, 0.0
    for step in range(s.next_batch, s.steps_per_epoch):
        if interrupt.requested:
            s.stop = f"interrupted: Ctrl-C after {s.step_count} steps, in epoch {s.epoch + 1}"
            break
        t_step = time.perf_counter()
        if c.budgeted:
            s.progress = _schedule_progress(s, budget_s)
            s.weight = c.kl_weight_at_progress(s.progress)
        # input and target (b, 1, M, T): the same tensor unless SpecAugment masks the input
        x, target = augment(s.order[step * c.batch_size:(step + 1) * c.batch_size])
        try:
            recon, mu, logvar = model(x)
        except ValueError as exc:  # the batch was checked finite: the weights blew up
            raise _diverged(c, s.epoch, step, s.step_count, "the model's outputs became "
                            "NaN or Inf", checkpoint_path) from exc
        total, recon_loss, kl_loss = run_loss(c, recon, target, mu, logvar, s.weight,
                                              s.magnitude)
        if not torch.isfinite(total):
            raise _diverged(c, s.epoch, step, s.step_count, f"the loss became {total.item()} "
                            f"(recon {recon_loss.item():.4g}, KL {kl_loss.item():.4g}, weight "
                            f"{s.weight:.3g})", checkpoint_path)
        if c.lr_schedule == "cosine":
            for group in s.optimizer.param_groups:
                group["lr"] = c.lr * 0.5 * (1.0 + math.cos(math.pi * min(s.progress, 1.0)))
        s.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        s.optimizer.step()
        if s.averaged is not None:
            s.averaged.update_parameters(model)
        with torch.no_grad():
            raw = kl_per_dimension(mu, logvar).sum(dim=1).mean()
            # History.recon is always the per-element MSE, whatever the loss's likelihood
            mse = recon_loss if c.gaussian_sigma is None else (
                recon_loss * 2 * c.gaussian_sigma**2 / x[0].numel())
            sums += torch.stack([total, mse, kl_loss, raw]).detach() * x.shape[0]
        seen += x.shape[0]
        s.step_count += 1
        s.next_batch = step + 1
        if not c.budgeted:
            s.progress = s.step_count / s.planned
        bar.update(1)
        step_s = max(step_s, time.perf_counter() - t_step)
        if c.max_steps is not None and s.step_count >= c.max_steps:
            s.stop = (f"max_steps: the budget of {c.max_steps} optimiser steps was reached in "
                      f"epoch {s.epoch + 1}")
            break
        if budget_s is not None and (time.perf_counter() - s.t_start + step_s
                                     + _eval_reserve(s, step_s) >= budget_s):
            s.stop = (f"max_minutes: the budget of {c.max_minutes:.3g} min was reached after "
                      f"{s.step_count} steps, in epoch {s.epoch + 1}")
            break
    if s.next_batch >= s.steps_per_epoch:
        s.order = None  # the epoch is done
        if s.stop is None and c.epochs is not None and s.epoch + 1 >= c.epochs:
            s.stop = f"epochs: all {c.epochs} epochs done ({s.step_count} steps)"
    return (sums / seen).tolist() if seen else None


def _eval_step(s: TrainState, means: list[float], seconds: float, checkpoint_path) -> None:
    """Eval-mode recon (and the mel magnitudes' spectral convergence where the spectrogram is
    known) on training and validation clips and active units, into the history."""
    h, model = s.history, s.eval_model
    try:
        train = eval_recon(model, s.data, magnitude=s.magnitude)
        val = eval_recon(model, s.val, magnitude=s.magnitude) if s.val is not None else None
    except ValueError as exc:  # the clips were checked finite: the weights blew up
        raise _diverged(s.config, s.epoch, s.steps_per_epoch - 1, s.step_count - 1,
                        "the model's outputs became NaN or Inf", checkpoint_path) from exc
    mu_all, logvar_all = train.mu, train.logvar  # (N, D) each
    au, variances = active_units(mu_all)
    for name, value in zip(("loss", "recon", "kl", "raw_kl"), means):
        getattr(h, name).append(value)
    h.epoch.append(s.epoch)
    h.kl_weight.append(s.weight)  # the weight of the epoch's last step
    h.active_units.append(au)
    h.seconds.append(seconds)
    h.kl_per_dim = kl_per_dimension(mu_all, logvar_all).mean(0).tolist()
    h.au_variance = variances.tolist()
    h.train_recon.append(train.mse)
    h.steps.append(s.step_count)
    if train.sc is not None:
        h.train_sc.append(train.sc)
    if val is not None:
        h.val_recon.append(val.mse)
        if val.sc is not None:
            h.val_sc.append(val.sc)


# -- train() ----------------------------------------------------------------------------------


def _check_data(model, mels, val_mels, waveforms, spectrogram, config):
    """The training and validation mels as float ``(N, 1, M, T)``, checked before any epoch."""
    _check_batch(mels, "mels")
    check_training_clips(mels.shape[0])
    data = mels.float()  # (N, 1, n_mels, T)
    model.encoder.check_input(data)
    if val_mels is not None and val_mels.shape[0] == 0:
        val_mels = None
    if val_mels is not None:
        _check_batch(val_mels, "val_mels", like=mels)
        val_mels = val_mels.float()  # (N_val, 1, n_mels, T)
        model.encoder.check_input(val_mels)
    aug, n = config.augment, data.shape[0]
    if aug is not None and aug.on_waveform:
        if waveforms is None or spectrogram is None:
            raise ValueError("TrainConfig.augment needs train(..., waveforms=<(N, 1, samples) "
                             "training clips>, spectrogram=<the AudioSpectrogram of mels>)")
        if waveforms.dim() != 3 or waveforms.shape[0] != n:
            raise ValueError(f"waveforms must be (N={n}, 1, samples) to match mels, got "
                             f"{tuple(waveforms.shape)}")
    if config.spectral_convergence_weight and spectrogram is None:
        raise ValueError("TrainConfig.spectral_convergence_weight needs train(..., "
                         "spectrogram=<the AudioSpectrogram of mels>) to read magnitudes")
    return data, val_mels


def train(model: ConvVAE, mels: torch.Tensor, config: TrainConfig | None = None, *,
          val_mels: torch.Tensor | None = None, waveforms: torch.Tensor | None = None,
          spectrogram=None, sinks: Sinks | None = None,
          generator: torch.Generator | None = None,
          resume: Checkpoint | None = None) -> History:
    """Train ``model`` on ``mels`` ``(N, 1, n_mels, T)`` and return the per-epoch history.

    The model is moved to the chosen device. Training stops at the first of
    ``config.epochs``, ``config.max_steps`` (both counted over the whole run, a resumed one
    included) and ``config.max_minutes`` (this call's wall time, the last evaluation and
    checkpoints included; see :class:`TrainConfig` for how the KL schedule follows a budget); a
    budget may end the last epoch part-way. The run then gets one verdict
    (``History.alarm_kind``, ``verdict``, ``alarm``; see
    :func:`sda_lab.training.diagnostics.verdict`); nothing is warned during training.

    Parameters
    ----------
    val_mels : Tensor, optional
        ``(N_val, 1, n_mels, T)`` held-out clips (from other files than ``mels``, see
        :func:`~sda_lab.data.split_by_file`), scored every evaluation in eval mode. Without
        them the verdict is about training clips only (``"not_validated"``).
    waveforms, spectrogram
        The training clips' waveforms ``(N, 1, samples)`` (row ``i`` gives ``mels[i]``) and the
        :class:`~sda_lab.representation.spectrogram.AudioSpectrogram` that made ``mels``; needed
        with waveform augmentation and the spectral-convergence term. ``spectrogram``'s config
        is also stored in every checkpoint as ``extra["spectrogram_config"]``.
    sinks : Sinks, optional
        Where the run writes as it goes (last and best checkpoints, the progress bar, what
        every checkpoint's ``extra`` holds); default: nothing written, a progress bar.
    generator : torch.Generator, optional
        Draws the data order and the augmentations, and seeds the model's own draws (module
        docstring of :mod:`sda_lab.training.resume`); default: seeded with ``config.seed``.
        The caller's global random state is left as it was.
    resume : Checkpoint, optional
        The last checkpoint of an earlier call on the same data (``load_checkpoint``): its
        weights, optimiser, weights' average, history, epoch and place in it, step count, KL
        schedule position and random states are taken up, so a run interrupted and resumed
        takes the steps an uninterrupted one takes.

    Raises
    ------
    ValueError
        Before any epoch: ``mels`` (or ``val_mels``) does not fit the model (shape, dtype, NaN),
        holds fewer than 2 clips, augmentation or the spectral term is asked for without
        ``waveforms`` / ``spectrogram``, or ``resume`` does not fit (another model, another
        number of clips, no resume state).
    TrainingDiverged
        If the loss or the model's outputs become NaN or Inf: one line with the epoch, step and
        learning rate, and what to try.
    TrainingInterrupted
        After a Ctrl-C (SIGINT, in the main thread): training stopped after the step it was in,
        evaluated and wrote both checkpoints; ``.history`` and ``.model`` hold the run so far.
    """
    config = config or TrainConfig()
    sinks = sinks or Sinks()
    data, val_mels = _check_data(model, mels, val_mels, waveforms, spectrogram, config)
    if resume is not None and resume.model.config != model.config:
        raise ValueError(f"resume: the checkpoint's model is {resume.model.config}, got a "
                         f"model of {model.config}")
    aug, n = config.augment, data.shape[0]
    magnitude = spectrogram.mel_magnitude if spectrogram is not None else None
    generator = generator if generator is not None else torch.Generator().manual_seed(
        config.seed)
    device = pick_device(config.device)
    model.to(device)
    # channels_last (NHWC) convolutions train 1.16x faster on the 2-core CPU this is built on
    # (benchmarks/bench_training_speed.py, RESULTS.md section 10); cuDNN prefers it too
    fmt = torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format
    model.to(memory_format=fmt)
    if resume is not None and resume.history is not None:
        history = resume.history
        history.alarm, history.alarm_kind, history.verdict, history.stop_reason = None, "", "", ""
    else:
        history = History(n_train=n, n_val=0 if val_mels is None else val_mels.shape[0],
                          train_baseline=mean_mel_baseline(data),
                          val_baseline=None if val_mels is None else mean_mel_baseline(
                              data, val_mels))
        if magnitude is not None:
            history.train_sc_baseline = mean_mel_sc_baseline(data, magnitude)
            if val_mels is not None:
                history.val_sc_baseline = mean_mel_sc_baseline(data, magnitude, val_mels)
    steps_per_epoch = math.ceil(n / config.batch_size)
    every = config.epochs_between_evaluations(
        steps_per_epoch, n + (0 if val_mels is None else val_mels.shape[0]))
    planned = steps_per_epoch * config.epochs if config.epochs is not None else math.inf
    if config.max_steps is not None:
        planned = min(planned, config.max_steps)
    extra = dict(sinks.extra)
    if spectrogram is not None:
        extra.setdefault("spectrogram_config", asdict(spectrogram.config))
    scale = getattr(getattr(spectrogram, "config", None), "scale", None)
    state = TrainState(
        model, torch.optim.AdamW(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay),
        config, history, data.to(device),
        val_mels.to(device) if val_mels is not None else None,  # (N_val, 1, M, T)
        extra, planned, steps_per_epoch, time.perf_counter())
    state.magnitude, state.generator = magnitude, generator
    if config.ema_decay is not None:
        state.averaged = weight_average(model, config.ema_decay)
    on_wave = aug is not None and aug.on_waveform
    wav = waveforms.float().to(device) if on_wave else None  # (N, 1, samples)

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of the batch ``idx``, each (b, 1, M, T)."""
        if on_wave:
            w = augment_waveforms(wav[idx], aug, spectrogram.config.sample_rate,
                                  generator)  # (b, 1, samples)
            w = mixup_waveforms(w, aug.mixup, generator)  # (b, 1, samples)
            x = spectrogram.waveform_to_mel(w)  # (b, 1, M, T)
        else:
            x = state.data[idx]  # (b, 1, M, T)
        x, target = augment_mels(x, aug, generator) if aug is not None else (x, x)
        return x.contiguous(memory_format=fmt), target.contiguous(memory_format=fmt)

    checkpoint_path = Path(sinks.checkpoint) if sinks.checkpoint is not None else None
    best_path = (Path(sinks.best) if sinks.best is not None
                 else best_path_for(checkpoint_path) if checkpoint_path is not None else None)
    budget_s = config.max_minutes * 60 if config.max_minutes is not None else None
    with forked_rng(device), InterruptRequest() as interrupt:
        if resume is not None:
            restore(state, generator, resume.resume or {}, resume.model.state_dict(),
                    resume.optimizer_state)
        else:
            seed_global(generator)
        reached = spent_limits(config, resume.resume or {}) if resume is not None else []
        if reached:
            raise ValueError(f"resume: expected a budget beyond what the run has done, got "
                             f"{' and '.join(reached)} for a run at {state.step_count} steps "
                             f"in {state.epoch} epochs: give a larger one")
        bar = progress_bar(total=planned if math.isfinite(planned) else None,
                           initial=state.step_count, disable=not sinks.progress, unit="step",
                           desc="training", leave=True, mininterval=0.5)
        hooks = [LiveState(bar), BestCheckpoint(best_path, sinks.save_every_s)]
        if checkpoint_path is not None:
            hooks.append(LastCheckpoint(checkpoint_path, sinks.save_every_s))
        try:
            t0 = time.perf_counter()
            while state.stop is None:
                means = _epoch_step(state, bar, budget_s, batch, checkpoint_path, interrupt)
                if means is not None and (state.stop is not None or state.epoch == 0
                                          or (state.epoch + 1) % every == 0):
                    t_eval = time.perf_counter()
                    # seconds: the epochs since the last evaluation, so they sum to the run's
                    _eval_step(state, means, t_eval - t0, checkpoint_path)
                    for hook in hooks:
                        hook.on_epoch_end(state)
                    t0 = time.perf_counter()
                    state.eval_s = t0 - t_eval
                if state.order is None:
                    state.epoch += 1
            history.stop_reason, history.step_count = state.stop, state.step_count
            alarm = verdict(history, config=config, scale=scale)
            history.alarm_kind, history.verdict = alarm.kind, alarm.message
            history.alarm = alarm.message if alarm.fired else None
            for hook in hooks:
                hook.on_train_end(state)
        finally:
            bar.close()
    if state.averaged is not None:  # the model returned is the one evaluated and saved
        model.load_state_dict(state.averaged.module.state_dict())
    model.eval()
    if state.stop.startswith("interrupted"):
        kept = f"; the run so far is in {checkpoint_path}" if checkpoint_path else ""
        raise TrainingInterrupted(f"training interrupted after {state.step_count} steps{kept}",
                                  history, model)
    return history


def train_run(model_config: VAEConfig, train_config: TrainConfig, mels: torch.Tensor, *,
              seed: int | None = None, **train_kwargs) -> tuple[ConvVAE, History]:
    """Train one run in this process: a fresh :class:`~sda_lab.model.vae.ConvVAE` built from
    ``model_config``, its initial weights drawn from torch's global generator seeded with
    ``seed`` (default ``train_config.seed``) inside ``torch.random.fork_rng`` (the caller's
    random state is left as it was), trained by :func:`train` on ``mels`` ``(N, 1, n_mels, T)``
    with ``train_config`` whose seed (the data order) is set to the same ``seed``.
    ``train_kwargs`` go to :func:`train` (``val_mels``, ``sinks``, ``resume``, ...). Returns
    ``(model, history)``.

    The one helper for "train one run" (the default model's cache, :func:`train_on_clips`,
    the experiments' runner); raises what :func:`train` raises.
    """
    seed = train_config.seed if seed is None else seed
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConvVAE.from_config(model_config)
    history = train(model, mels, replace(train_config, seed=seed), **train_kwargs)
    return model, history


__all__ = ["Sinks", "TrainingDiverged", "TrainingInterrupted", "train", "train_run"]
