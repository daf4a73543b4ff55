"""What :func:`sda_lab.training.loop.train` shares between its steps, where it writes
(:class:`Sinks`), and its hooks (callbacks): the live state in the progress bar, the best
checkpoint, the last checkpoint (with the state :mod:`sda_lab.training.resume` goes on from).

A hook is any object with ``on_epoch_end(state)`` and ``on_train_end(state)``; ``train()`` calls
them in order after every evaluation step and once when the run has its verdict (the idea of
pythae's ``training_callbacks.py``, without the framework).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..model.vae import ConvVAE
from .checkpoint import save_checkpoint, write_checkpoint
from .config import TrainConfig
from .diagnostics import live_state
from .history import History
from .resume import capture

__all__ = ["Sinks", "TrainState", "LiveState", "BestCheckpoint", "LastCheckpoint",
           "weight_average"]


@dataclass
class Sinks:
    """Where one :func:`~sda_lab.training.loop.train` writes as it goes.

    ``checkpoint``: the last checkpoint (weights, optimiser, history, configs and the state a
    resumed run goes on from), written atomically after an evaluation at most every
    ``save_every_s`` seconds and always at the end, an interrupt included. ``best``: the
    evaluation with the lowest validation score, without optimiser state (default
    :func:`~sda_lab.training.checkpoint.best_path_for` of ``checkpoint``). ``progress``: the
    progress bar with the live reading. ``extra``: stored in every checkpoint's ``extra``.
    """

    checkpoint: str | Path | None = None
    best: str | Path | None = None
    save_every_s: float = 0.0
    progress: bool = True
    extra: dict = field(default_factory=dict)


def weight_average(model: torch.nn.Module, decay: float) -> torch.nn.Module:
    """An ``AveragedModel`` of ``model`` (BatchNorm statistics too) whose ``update_parameters``
    keeps the exponential average with the decay warmed up, ``min(decay, (1 + n) / (10 + n))``
    after ``n`` updates (``tf.train.ExponentialMovingAverage``'s ``num_updates``):
    :class:`~sda_lab.training.config.TrainConfig`'s ``ema_decay``."""
    from torch.optim.swa_utils import AveragedModel

    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return averaged + (current - averaged) * (1.0 - d)

    return AveragedModel(model, avg_fn=average, use_buffers=True)


@dataclass
class TrainState:
    """What the epoch step, the evaluation step and the hooks share during one :func:`train`."""

    model: ConvVAE
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    history: History
    data: torch.Tensor  # (N, 1, M, T) on the device
    val: torch.Tensor | None  # (N_val, 1, M, T) on the device
    extra: dict
    planned: float  # planned optimiser steps (inf without an epoch or step limit)
    steps_per_epoch: int
    t_start: float
    epoch: int = 0
    step_count: int = 0
    weight: float = 0.0
    stop: str | None = None
    live: str = ""  # the progress bar's state after the last epoch
    averaged: torch.nn.Module | None = None  # AveragedModel of model (TrainConfig.ema_decay)
    magnitude: object = None  # mel -> mel magnitudes (AudioSpectrogram.mel_magnitude), or None
    generator: torch.Generator | None = None  # the data order's and augmentation's draws
    order: torch.Tensor | None = None  # this epoch's clip order; None: the epoch is done
    next_batch: int = 0  # the batch of ``order`` the next step takes
    progress0: float = 0.0  # the KL schedule's progress when this call began (resume)
    progress: float = 0.0  # the KL schedule's progress now, in [0, 1]
    best_metric: float = math.inf  # the best checkpoint's score so far
    eval_s: float | None = None  # seconds the last evaluation and its hooks took

    @property
    def eval_model(self) -> ConvVAE:
        """The model evaluated and saved: the weights' average where kept, else ``model``."""
        return self.model if self.averaged is None else self.averaged.module


class LiveState:
    """Hook: after every epoch, the reading in the progress bar (``held-out spectral error 0.42x
    the average · 60 active units``) and in ``History.alarms``: numbers only, to the end (the
    run's one verdict is said once, by whoever reports the run)."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def on_epoch_end(self, s: TrainState) -> None:
        h = s.history
        sc = bool(h.train_sc)
        on_val = bool(h.val_sc if sc else h.val_recon)
        side = "val" if on_val else "train"
        score = getattr(h, f"{side}_sc" if sc else f"{side}_recon")[-1]
        base = getattr(h, f"{side}_sc_baseline" if sc else f"{side}_baseline")
        text, looks = live_state(score, base, h.active_units[-1],
                                 "validation" if on_val else "training",
                                 figure="sc" if sc else "mse")
        h.alarms.append(looks)
        s.live = text
        self.bar.set_postfix_str(text, refresh=False)

    def on_train_end(self, s: TrainState) -> None:
        self.bar.set_postfix_str(s.live, refresh=False)


class BestCheckpoint:
    """Hook: remembers the epoch with the lowest validation score (training score without
    validation; the score is the mel magnitudes' spectral convergence where measured, else the
    MSE) and writes it, without optimizer state, to ``path`` (when given) at most every
    ``save_every_s`` seconds and at the end."""

    def __init__(self, path: Path | None, save_every_s: float) -> None:
        self.path, self.save_every_s = path, save_every_s
        self.state, self.history, self.pending, self.saved_at = None, None, False, -math.inf

    def on_epoch_end(self, s: TrainState) -> None:
        h = s.history
        if h.train_sc:
            metric = h.val_sc[-1] if h.val_sc else h.train_sc[-1]
        else:
            metric = h.val_recon[-1] if h.val_recon else h.train_recon[-1]
        if metric < s.best_metric:
            s.best_metric, h.best_epoch = metric, s.epoch
            self.state = {k: v.detach().to("cpu", copy=True)
                          for k, v in s.eval_model.state_dict().items()}
            self.history = replace(h, **{k: list(v) for k, v in asdict(h).items()
                                         if isinstance(v, list)})
            self.pending = True
        if s.stop is None and time.perf_counter() - self.saved_at >= self.save_every_s:
            self._write(s)

    def on_train_end(self, s: TrainState) -> None:
        self._write(s)

    def _write(self, s: TrainState) -> None:
        if self.path is None or not self.pending:
            return
        write_checkpoint(self.path, s.model.config, self.state, None, self.history, s.config,
                         {**s.extra, "best_epoch": self.history.best_epoch})
        self.pending, self.saved_at = False, time.perf_counter()


class LastCheckpoint:
    """Hook: writes the last evaluated state (with optimizer state and the resume state of
    :func:`sda_lab.training.resume.capture`) to ``path`` at most every ``save_every_s`` seconds,
    and always at the end, so the file on disk is always a good one to go on from."""

    def __init__(self, path: Path, save_every_s: float) -> None:
        self.path, self.save_every_s, self.saved_at = path, save_every_s, -math.inf

    def on_epoch_end(self, s: TrainState) -> None:
        if s.stop is None and time.perf_counter() - self.saved_at >= self.save_every_s:
            self.on_train_end(s)

    def on_train_end(self, s: TrainState) -> None:
        save_checkpoint(self.path, s.eval_model, s.optimizer, s.history, s.config, s.extra,
                        resume=capture(s, s.generator, s.best_metric))
        self.saved_at = time.perf_counter()
