"""Seams of sounds longer than a clip (issue 34): conditioned continuation against independent
windows, on a run folder's held-out material.

From each held-out clip's posterior mean (the run's own held-out files, ``load_run``) and from
as many latents of the run's GMM prior (``prior_for(run, "gmm", seed)``), the sound is continued
to ``--seconds`` by :func:`sda_lab.studies.continuation.continue_mel` with the same windows and
crossfade in three ways:

- ``conditioned``: the product's way (each window's first latent frames shared with the last of
  the one before, the rest drawn from the prior conditioned on them);
- ``independent``: every window after the first an independent prior sample;
- ``one pass`` (sequence latents only): the conditioned latents joined into one long latent
  sequence (each window's new frames after the first window) and decoded in one pass through
  the decoder's layers, which are convolutional along time (no crossfade).

:func:`sda_lab.studies.continuation.seam_flux` scores each: the ratio of the spectral flux at
the crossfaded frames to the flux elsewhere, on the generated mel ("mel") and on the mel of the
audio the run's :class:`~sda_lab.representation.inverter.Inverter` makes of it ("audio"),
pooled over the clips of one seed. Printed as a markdown table: mean over ``--seeds`` and
[min, max], and the largest latent value of the continued windows (the training posterior
means stay within a few units; an exact conditional, ``--shrinkages 0``, can run away).
The run folder is only read.

Usage: OMP_NUM_THREADS=1 python -m benchmarks.bench_continuation RUN [--seconds 4]
       [--seeds 0 1 2] [--overlaps 0.333] [--shrinkages 0.5] [--no-audio]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


@torch.no_grad()
def decode_one_pass(model, latents: torch.Tensor, shared: int, frames: int) -> torch.Tensor:
    """Window latents ``(B, W, D)`` sharing ``shared`` latent frames -> one long latent
    sequence decoded in one pass through the decoder's layers: mel ``(B, 1, n_mels, frames)``."""
    c, dec = model.config, model.decoder
    b, w, _ = latents.shape
    seq = latents.view(b, w, c.latent_channels, c.latent_frames)  # (B, W, C, F)
    parts = [seq[:, 0]] + [seq[:, i, :, shared:] for i in range(1, w)]
    long = torch.cat(parts, dim=-1).unsqueeze(2)  # (B, C, 1, L)
    model.eval()
    h = dec.deconvs(dec.fc(long))  # (B, 1, n_mels, scale * L)
    return dec.output_activation(h)[..., :frames]  # (B, 1, n_mels, frames)


def measure(run_path: str, seconds: float, seeds: list[int], overlaps: list[float],
            audio: bool = True, shrinkages: tuple[float, ...] = (0.5,)) -> list[dict]:
    from sda_lab.model.vae import encode_dataset
    from sda_lab.representation.inverter import Inverter
    from sda_lab.studies.continuation import (ContinuationConfig, check_seconds, continue_mel,
                                              seam_flux, window_layout)
    from sda_lab.studies.generate import load_run, prior_for

    run = load_run(run_path)
    spec, model = run.spec, run.model
    inverter = Inverter.for_run(run.path, spec)
    samples = check_seconds(seconds, spec, "--seconds")
    frames = spec.get_mel_shape(samples)[1]
    held, _ = encode_dataset(model, run.val_mels)  # (N_val, D)
    rows = []
    for overlap, shrinkage in ((o, s) for o in overlaps for s in shrinkages):
        _, _, shared = window_layout(model.config, ContinuationConfig(overlap))
        for seed in seeds:
            prior = prior_for(run, "gmm", seed)
            starts = {"held-out": held.cpu(), "prior": prior.sample(len(held), seed)}
            for start, z in starts.items():
                mels, biggest, joins = {}, {}, None
                for method, conditioned in (("conditioned", True), ("independent", False)):
                    g = torch.Generator().manual_seed(seed)
                    cont = continue_mel(model, prior, z, frames, g,
                                        ContinuationConfig(overlap, conditioned, shrinkage))
                    mels[method], joins = cont.mel, cont.joins
                    biggest[method] = float(cont.latents.abs().max())
                    if conditioned and model.config.latent == "sequence":
                        mels["one pass"] = decode_one_pass(model, cont.latents, shared, frames)
                        biggest["one pass"] = biggest[method]
                for method, mel in mels.items():
                    row = {"overlap": overlap, "shared": shared, "shrinkage": shrinkage,
                           "seed": seed, "start": start, "method": method,
                           "latent_max": biggest[method], "mel": seam_flux(mel, spec, joins)["ratio"]}
                    if audio:
                        g = torch.Generator().manual_seed(seed)
                        wave = inverter(mel, samples, generator=g)  # (B, 1, samples)
                        row["audio"] = seam_flux(spec.waveform_to_mel(wave), spec, joins)["ratio"]
                    rows.append(row)
                    print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = [c for c in ("mel", "audio") if c in df]
    lines = ["| overlap (latent frames) | shrinkage | start | method | largest latent | "
             + " | ".join(f"seam ratio, {c}" for c in cols) + " |",
             "|" + "---|" * (5 + len(cols))]
    keys = ["overlap", "shared", "shrinkage", "start", "method"]
    for (overlap, shared, shrinkage, start, method), g in df.groupby(keys, sort=False):
        cells = [f"{g[c].mean():.2f} [{g[c].min():.2f}, {g[c].max():.2f}]" for c in cols]
        big = f"{g['latent_max'].max():.3g}"
        lines.append(f"| {overlap:.3g} ({shared}) | {shrinkage:g} | {start} | {method} | {big} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_continuation",
        description="Seam ratio (spectral flux at the joins over within) of sounds continued "
                    "past one clip: conditioned continuation against independent windows.")
    parser.add_argument("run", metavar="RUN", help="run folder of 'python -m sda_lab train'")
    parser.add_argument("--seconds", type=float, default=4.0, help="length (default 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--overlaps", type=float, nargs="+", default=[1 / 3],
                        help="ContinuationConfig.overlap values (default 1/3)")
    parser.add_argument("--shrinkages", type=float, nargs="+", default=[0.5],
                        help="ContinuationConfig.shrinkage values (default 0.5)")
    parser.add_argument("--no-audio", action="store_true", help="score the mel only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = measure(args.run, args.seconds, args.seeds, args.overlaps, not args.no_audio,
                   tuple(args.shrinkages))
    print(f"\n## Seam ratio of {args.seconds:g} s continuations, {args.run}, seeds "
          f"{' '.join(map(str, args.seeds))} (mean [min, max] over seeds)\n")
    print(table(rows))
    print(f"\n{time.perf_counter() - t0:.0f} s, numpy {np.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
