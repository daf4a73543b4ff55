"""What a run needs to stop cleanly and go on later: a Ctrl-C that ends training at a step
boundary (:class:`InterruptRequest`, :class:`TrainingInterrupted`), the random state kept apart
from the caller's (:func:`forked_rng`), and the state saved in the last checkpoint and read
back (:func:`capture`, :func:`restore`).

Randomness of a run: one ``torch.Generator`` handed down to :func:`sda_lab.training.loop.train`
draws the data order and every augmentation; the model's own draws (dropout, the
reparameterisation noise) use torch's global generator, which ``train`` forks
(``torch.random.fork_rng``), seeds from the handed-down generator and restores on exit, so the
caller's global random state is never changed. The last checkpoint holds both states.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import torch

__all__ = ["TrainingInterrupted", "InterruptRequest", "forked_rng", "capture", "restore",
           "spent_limits", "RESUME_KEYS"]

RESUME_KEYS = ("generator_state", "global_rng_state", "epoch", "step_count", "order",
               "next_batch", "progress", "best_metric", "raw_model_state", "averaged_state")


def spent_limits(config, resume: dict) -> list[str]:
    """The limits of ``config`` (a ``TrainConfig``) that the run saved as ``resume`` (what
    :func:`capture` saved) has already reached, as ``"max_steps=N"`` / ``"epochs=N"``; empty
    when there is training left to do."""
    steps, epoch = int(resume.get("step_count", 0)), int(resume.get("epoch", 0))
    return ([f"max_steps={config.max_steps}"] if config.max_steps is not None
            and steps >= config.max_steps else []) + (
        [f"epochs={config.epochs}"] if resume.get("order") is None and config.epochs is not None
        and epoch >= config.epochs else [])


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at a step boundary after Ctrl-C (SIGINT); the checkpoints hold the last
    completed step. ``history`` is the run's record so far, ``model`` the model as saved, and
    ``run`` whatever a caller attaches (e.g. :class:`sda_lab.training.own_audio.ClipsRun`)."""

    def __init__(self, message: str, history=None, model=None) -> None:
        super().__init__(message)
        self.history, self.model, self.run = history, model, None


class InterruptRequest:
    """Within ``with``: the first Ctrl-C only sets :attr:`requested` (the loop stops after the
    step it is in and saves); a second one interrupts at once. Outside the main thread (where
    Python delivers signals) nothing is installed and Ctrl-C interrupts at once as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: at once
        print("\ninterrupt: stopping after this step and saving the run (Ctrl-C again to stop "
              "at once, without saving)", file=sys.stderr, flush=True)

    def __enter__(self) -> InterruptRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class _CudaRng:
    """``torch.cuda``'s generator state of one device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def get_rng_state(self) -> torch.Tensor:
        return torch.cuda.get_rng_state(self.device)

    def set_rng_state(self, state: torch.Tensor) -> None:
        torch.cuda.set_rng_state(state, self.device)


def _device_rng(device: torch.device):
    """What holds the global generator ``device``'s kernels draw from (None: the CPU's)."""
    if device.type == "cuda":
        return _CudaRng(device)
    if device.type == "mps":
        return torch.mps
    return None


@contextlib.contextmanager
def forked_rng(device: torch.device):
    """Fork torch's global generators (the CPU's and ``device``'s) for the ``with`` block: what
    happens inside never changes the caller's random state."""
    accel = _device_rng(device)
    saved = accel.get_rng_state() if accel is not None else None
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        if accel is not None:
            accel.set_rng_state(saved)


def seed_global(generator: torch.Generator) -> None:
    """Seed torch's global generators (all devices) from one draw of ``generator``."""
    torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))


def _global_state(device: torch.device) -> dict:
    accel = _device_rng(device)
    state = {"cpu": torch.get_rng_state()}
    if accel is not None:
        state[device.type] = accel.get_rng_state()
    return state


def capture(s, generator: torch.Generator, best_metric: float) -> dict:
    """The resume state of a run at a step boundary (``s``: the loop's
    :class:`~sda_lab.training.callbacks.TrainState`): generator and global random states, the
    epoch to go on in and its order with the next batch (``order`` None: start a new epoch),
    optimiser steps, the KL schedule's progress, the best score so far, and the raw and averaged
    weights where a weight average is kept (the checkpoint's ``model_state`` is the average)."""
    averaged = s.averaged
    return {
        "generator_state": generator.get_state(),
        "global_rng_state": _global_state(s.data.device),
        "epoch": s.epoch,
        "step_count": s.step_count,
        "order": None if s.order is None else s.order.detach().cpu(),
        "next_batch": s.next_batch,
        "progress": s.progress,
        "best_metric": best_metric,
        "raw_model_state": None if averaged is None else {
            k: v.detach().cpu() for k, v in s.model.state_dict().items()},
        "averaged_state": None if averaged is None else {
            k: v.detach().cpu() for k, v in averaged.state_dict().items()},
    }


def restore(s, generator: torch.Generator, resume: dict, model_state: dict,
            optimizer_state: dict | None) -> None:
    """Put ``resume`` (what :func:`capture` saved, ``model_state`` the checkpoint's weights) back
    into the loop's state ``s`` and ``generator``, inside the forked global random state.

    Raises
    ------
    ValueError
        One line, when the saved state does not fit this run: no optimiser state, an epoch
        order for another number of clips, or a weight average kept on one side only.
    """
    missing = [k for k in RESUME_KEYS if k not in resume]
    if missing or optimizer_state is None:
        raise ValueError(f"resume: expected the last checkpoint of a run (optimiser and resume "
                         f"state), got one without {', '.join(missing) or 'optimiser state'}")
    if (resume["averaged_state"] is None) != (s.averaged is None):
        raise ValueError("resume: the checkpoint and the config disagree on the weights' "
                         "average (TrainConfig.ema_decay): resume with the run's own config")
    order = resume["order"]
    n = s.data.shape[0]
    if order is not None and (order.numel() != n or sorted(order.tolist()) != list(range(n))):
        raise ValueError(f"resume: the checkpoint's epoch order is for {order.numel()} clips, "
                         f"got {n} training clips: resume on the run's own files")
    s.model.load_state_dict(resume["raw_model_state"] or model_state)
    if s.averaged is not None:
        s.averaged.load_state_dict(resume["averaged_state"])
    s.optimizer.load_state_dict(optimizer_state)
    generator.set_state(resume["generator_state"])
    state = resume["global_rng_state"]
    torch.set_rng_state(state["cpu"])
    accel = _device_rng(s.data.device)
    if accel is not None and s.data.device.type in state:
        accel.set_rng_state(state[s.data.device.type])
    s.epoch, s.step_count = int(resume["epoch"]), int(resume["step_count"])
    s.order = None if order is None else order.to(s.data.device)
    s.next_batch, s.progress0 = int(resume["next_batch"]), float(resume["progress"])
    s.progress = s.progress0
