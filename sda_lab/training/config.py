"""How to train: :class:`TrainConfig` (budget, optimiser, KL schedule, free bits, likelihood,
augmentation, weight average, evaluation cadence, and how a heard file's posterior is found),
read by :func:`sda_lab.training.loop.train` and stored in every checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..data.augment import AugmentConfig
from ..model.losses import KL_SCHEDULES, kl_weight_at_progress, scheduled_kl_weight

__all__ = ["TrainConfig", "LR_SCHEDULES", "EVAL_STEP_SHARE"]

LR_SCHEDULES = ("constant", "cosine")
# the eval-mode pass over a batch of clips is taken to cost this share of an optimiser step on
# one (forward only, no gradient): 0.47 measured on a 2-core CPU, benchmarks/RESULTS.md 17
EVAL_STEP_SHARE = 0.5


@dataclass
class TrainConfig:
    """How to train; loss defaults are the seed's (free bits 0.5 per sample, 30% warm-up).

    Budget: training stops at the first of ``epochs``, ``max_steps`` (optimiser steps) and
    ``max_minutes`` (wall clock, checked after every step); ``epochs=None`` means no epoch limit
    (then a step or minute budget is required). ``History.stop_reason`` says which one ended it.

    Schedules (:mod:`sda_lab.model.losses`): with epochs only, the KL weight is set per epoch from
    ``epoch / epochs``. With a step or minute budget, it is set per step from the fraction of
    the planned budget used, ``p = max(step / planned_steps, elapsed / max_minutes)``
    (``planned_steps = min(epochs * steps_per_epoch, max_steps)``), so a 30% warm-up is 30% of
    the budget however many epochs that turns out to be. A minute budget makes the schedule
    (and so the result) depend on the machine's speed; use ``max_steps`` for reproducible runs.

    ``ema_decay``: Polyak averaging of the weights (Polyak and Juditsky 1992), as an exponential
    moving average updated after every optimiser step (``torch.optim.swa_utils.AveragedModel``,
    BatchNorm statistics averaged too), its decay warmed up as
    ``tf.train.ExponentialMovingAverage`` does with ``num_updates``: ``min(ema_decay, (1 + n) / (10
    + n))`` after ``n`` updates, so a short run's average follows its weights. The optimiser steps
    the raw weights; every evaluation, both checkpoints and the returned model are the averaged
    ones. None (the plan): no average.

    ``spectral_convergence_weight``: adds that weight times the spectral convergence of the
    mel magnitudes (:func:`sda_lab.model.losses.spectral_convergence_loss` on
    :meth:`~sda_lab.representation.spectrogram.AudioSpectrogram.mel_magnitude`) to the loss, so
    the loud bins a listener hears weigh more than the MSE on log values gives them; 0 (the
    plan): the MSE alone. It needs ``train(..., spectrogram=)``.

    ``lr_schedule``: ``"constant"`` (the plan: ``lr`` throughout) or ``"cosine"``: the learning
    rate ``lr * (1 + cos(pi * p)) / 2`` at the fraction ``p`` of the planned budget the KL
    schedule also reads (SGDR without restarts, Loshchilov & Hutter 2017), so a short run ends
    on small steps instead of the last large one.

    ``posterior_steps``: where the run is *heard* (its audio figures, ``listen``, the
    fine-tuning of its inverse on decoded mels), a file's posterior mean is the encoder's
    refined by this many gradient steps on this loss for that file alone
    (:func:`sda_lab.training.posterior.refine_posterior`, semi-amortised inference); training
    and its mel-domain evaluations are unchanged. 0 (the plan): the encoder's mean as it is.

    ``eval_every``: the eval-mode pass (recon on training and validation clips, active units),
    the history's row and the checkpoints come after the first epoch, every ``eval_every``-th
    and the last; 1 (the plan): every epoch. Training itself is the same whatever it is (the
    pass draws no random numbers), so a sweep that reads only final states can skip the rest.

    ``eval_share``: at most this share of the work goes to that pass: the epochs between
    evaluations are enough that the pass over all training and validation clips (costed at
    :data:`EVAL_STEP_SHARE` of an optimiser step per batch of clips) is at most this share of
    the steps' and its own work. On a small folder an epoch is one or two steps, and evaluating
    after each took about a third of a run's minutes. Worked out from the clip counts, so a step
    budget stays reproducible. None (the plan): every ``eval_every``-th epoch.
    """

    epochs: int | None = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW's default decoupled decay
    grad_clip: float = 1.0  # max gradient norm; the seed recommends clipping
    kl_schedule: str = "linear"  # "linear" warm-up, "cyclical" (Fu et al.) or "constant"
    warmup_fraction: float = 0.3
    n_cycles: int = 4
    cycle_ratio: float = 0.5
    kl_weight: float = 1.0  # the weight reached after warm-up (or held, for "constant")
    free_bits: float = 0.5
    free_bits_mode: str = "per_sample"
    seed: int = 0
    device: str | None = None  # None: CUDA, then MPS, then CPU
    max_steps: int | None = None  # optimiser-step budget
    max_minutes: float | None = None  # wall-clock budget
    augment: AugmentConfig | None = None  # None (default): no augmentation; True: AugmentConfig()
    # None: the seed's per-element mean MSE. A number: the Gaussian decoder's NLL with this sigma
    # (mel units), under which kl_weight 1 is the ELBO; see losses.vae_loss and elbo_kl_weight.
    gaussian_sigma: float | None = None
    ema_decay: float | None = None  # per-step decay of the weights' average; None: no average
    eval_every: int = 1  # epochs between evaluations (the first and the last always)
    eval_share: float | None = None  # at most this share of the work evaluating; None: the plan
    spectral_convergence_weight: float = 0.0  # of the mel magnitudes' SC, added to the loss
    lr_schedule: str = "constant"  # or "cosine": lr decays to 0 over the planned budget
    posterior_steps: int = 0  # refinement steps of a heard file's posterior mean; 0: none

    def epochs_between_evaluations(self, steps_per_epoch: int, n_eval_clips: int) -> int:
        """``eval_every``, raised where ``eval_share`` asks for fewer evaluations of
        ``n_eval_clips`` (training and validation) at ``steps_per_epoch`` steps an epoch."""
        if self.eval_share is None:
            return self.eval_every
        pass_steps = EVAL_STEP_SHARE * math.ceil(n_eval_clips / self.batch_size)
        between = pass_steps * (1.0 - self.eval_share) / self.eval_share  # optimiser steps
        return max(self.eval_every, math.ceil(between / steps_per_epoch))

    def __post_init__(self) -> None:
        if (self.epochs is not None and self.epochs < 1) or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.kl_schedule not in KL_SCHEDULES:
            raise ValueError(f"kl_schedule must be one of {KL_SCHEDULES}, got "
                             f"{self.kl_schedule!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got "
                             f"{self.lr_schedule!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0 or None, got {self.max_minutes}")
        if self.epochs is None and self.max_steps is None and self.max_minutes is None:
            raise ValueError("epochs=None needs a budget: set max_steps or max_minutes")
        if not isinstance(self.eval_every, int) or self.eval_every < 1:
            raise ValueError(f"eval_every must be a positive integer, got {self.eval_every!r}")
        if (not isinstance(self.posterior_steps, int) or isinstance(self.posterior_steps, bool)
                or self.posterior_steps < 0):
            raise ValueError(f"posterior_steps must be an integer >= 0, got "
                             f"{self.posterior_steps!r}")
        if self.eval_share is not None and not 0.0 < self.eval_share < 1.0:
            raise ValueError(f"eval_share must be in (0, 1) or None, got {self.eval_share!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay!r}")
        if not (isinstance(self.spectral_convergence_weight, (int, float))
                and 0.0 <= self.spectral_convergence_weight < math.inf):
            raise ValueError(f"spectral_convergence_weight must be a finite number >= 0, got "
                             f"{self.spectral_convergence_weight!r}")
        if self.augment is True:
            self.augment = AugmentConfig()
        elif self.augment is False:
            self.augment = None
        elif isinstance(self.augment, dict):  # from asdict(), e.g. a checkpoint
            self.augment = AugmentConfig(**self.augment)
        elif self.augment is not None and not isinstance(self.augment, AugmentConfig):
            raise TypeError(f"augment must be None, a bool or an AugmentConfig, got "
                            f"{type(self.augment).__name__}")

    @property
    def budgeted(self) -> bool:
        """True when a step or minute budget is set (the schedule then runs per step)."""
        return self.max_steps is not None or self.max_minutes is not None

    def kl_weight_at(self, epoch: int) -> float:
        """The per-epoch schedule (used when no step/minute budget is set), times ``kl_weight``."""
        if self.epochs is None:
            raise ValueError("kl_weight_at(epoch) needs epochs; with a budget use "
                             "kl_weight_at_progress")
        return self.kl_weight * scheduled_kl_weight(self.kl_schedule, epoch, self.epochs,
                                                    self.warmup_fraction, self.n_cycles,
                                                    self.cycle_ratio)

    def kl_weight_at_progress(self, progress: float) -> float:
        """The schedule over the fraction ``progress`` in [0, 1] of the planned budget."""
        return self.kl_weight * kl_weight_at_progress(self.kl_schedule, progress,
                                                      self.warmup_fraction, self.n_cycles,
                                                      self.cycle_ratio)
