"""Training throughput of the full ConvVAE on this CPU, variants side by side in one run.

    python -m benchmarks.bench_training_speed [--rounds 3] [--steps 4]

Each round measures every variant once (interleaved, so a load that comes and goes hits all of
them alike); the table gives the median samples/s over rounds and the ratio to the baseline
(NCHW float32, batch 32, torch's default threads). Variants: memory format ``channels_last``,
oneDNN (mkldnn) off, batch 16 and 64, one thread, the own-audio recipe's model and the same at
the plan's channels, ``torch.compile`` (compile time excluded, said separately), and the
``OMP_WAIT_POLICY`` the Makefile sets (needs a fresh process: run once with and once without
the variable set). Writes nothing; ``benchmarks/RESULTS.md`` keeps the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace

import torch

from sda_lab.model.losses import vae_loss
from sda_lab.model.vae import ConvVAE, VAEConfig
from sda_lab.training.recipes import OWN_AUDIO_RECIPE


def _steps_per_s(model, x, steps: int, warmup: int = 2) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        recon, mu, logvar = model(x)
        total, _, _ = vae_loss(recon, x, mu, logvar)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return x.shape[0] / statistics.median(times)


def variants(compile_too: bool):
    def make(batch=32, channels_last=False, mkldnn=True, threads=None, compiled=False,
             config=None):
        def run(steps):
            torch.manual_seed(0)
            prev_threads = torch.get_num_threads()
            prev_mkldnn = torch.backends.mkldnn.enabled
            if threads:
                torch.set_num_threads(threads)
            torch.backends.mkldnn.enabled = mkldnn
            try:
                model = ConvVAE(replace(config) if config else VAEConfig(dropout=0.0))
                x = torch.rand(batch, 1, 128, 94)  # (B, 1, n_mels, T)
                if channels_last:
                    model = model.to(memory_format=torch.channels_last)
                    x = x.contiguous(memory_format=torch.channels_last)
                if compiled:
                    model = torch.compile(model)
                return _steps_per_s(model, x, steps)
            finally:
                torch.set_num_threads(prev_threads)
                torch.backends.mkldnn.enabled = prev_mkldnn
        return run

    out = {
        "baseline (NCHW fp32, batch 32)": make(),
        "channels_last": make(channels_last=True),
        "oneDNN off": make(mkldnn=False),
        "batch 16": make(batch=16),
        "batch 64": make(batch=64),
        "1 thread": make(threads=1),
        # the own-audio recipe (latent sequence, half the plan's channels) and the same at the
        # plan's channels, both channels_last as the trainer runs them
        "own-audio recipe, the plan's channels": make(channels_last=True, config=replace(
            OWN_AUDIO_RECIPE.model, channels=VAEConfig().channels)),
        "own-audio recipe": make(channels_last=True, config=OWN_AUDIO_RECIPE.model),
    }
    if compile_too:
        out["torch.compile"] = make(compiled=True)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile)")
    args = p.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    runs = variants(args.compile)
    got = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, run in runs.items():
            got[name].append(run(args.steps))
        print(f"after round {r + 1}/{args.rounds}:", flush=True)
        _table(got)


def _table(got: dict) -> None:
    base = statistics.median(got["baseline (NCHW fp32, batch 32)"])
    print("| variant | samples/s (median of rounds) | min-max | vs baseline |")
    print("|---|---|---|---|")
    for name, v in got.items():
        m = statistics.median(v)
        print(f"| {name} | {m:.1f} | {min(v):.1f}-{max(v):.1f} | {m / base:.2f}x |", flush=True)

if __name__ == "__main__":
    main()
