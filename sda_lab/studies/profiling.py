"""Measuring a training step: throughput and memory, on whatever device the model is on."""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from ..model.losses import vae_loss
from ..model.vae import ConvVAE


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def activation_bytes(model: ConvVAE, x: torch.Tensor) -> int:
    """Bytes of tensors autograd saves for backward in one forward pass (activation memory)."""
    total = 0
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = t.untyped_storage().data_ptr()
        if key not in seen and not isinstance(t, torch.nn.Parameter):
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        recon, mu, logvar = model(x)
        vae_loss(recon, x, mu, logvar)
    return total


def measure_training_step(model: ConvVAE, batch_size: int = 32, steps: int = 6, warmup: int = 2,
                          device: torch.device | str | None = None) -> dict[str, float]:
    """Time forward + backward + AdamW step on random mels of the model's shape.

    Returns samples/s (at the median step time), the median step time of the ``steps`` timed
    steps (``median_step_ms``), activation
    memory (saved for backward), the memory of parameters + gradients + AdamW's two moments,
    their sum as the estimated peak, the process's peak resident memory, and on CUDA the
    allocator's measured peak.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).train()
    c = model.config
    x = torch.rand(batch_size, 1, c.n_mels, c.n_frames, device=device)  # (B, 1, n_mels, T)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        recon, mu, logvar = model(x)
        total, _, _ = vae_loss(recon, x, mu, logvar)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = float(np.median(times))  # robust to one slow step (a page fault, another process)
    act = activation_bytes(model, x) / 2**20
    state = 4 * sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    out = {
        "batch_size": batch_size,
        "samples_per_s": batch_size / step,
        "median_step_ms": 1000 * step,
        "activation_mb": act,
        "params_grads_adam_mb": state,
        "estimated_peak_mb": act + state,
        "process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out
