"""Where a run's level goes: the decoded mel, the inversion, and the WAV writer, per held-out clip.

For a finished ``python -m sda_lab train`` run, its held-out clips (at most ``--clips``) go the
two ways :mod:`sda_lab.training.audio_eval` scores (the model: encode, posterior mean, decode;
the mel round trip), each through the run's own inversion. Printed per clip: the decoded mel's
level against the input's mel (from the mel power, dB), the inverted audio's level before the
writer, and its peak. Then, per path, spectral convergence, log-spectral distance and level
against the input three ways: as written by the package's writer (its peak limiter,
:func:`sda_lab.core._io.limit_peaks`), with a whole-file gain to full scale instead (the writer
before 2026-12-04), and unwritten (no protection from clipping at all).

Usage: python -m benchmarks.bench_writer RUN [RUN ...] [--clips 12]
"""

from __future__ import annotations

import argparse

import torch

from sda_lab.core._io import limit_peaks
from sda_lab.interface.plotting import markdown_table
from sda_lab.representation.inverter import Inverter
from sda_lab.representation.metrics import level_db, log_spectral_distance, spectral_convergence
from sda_lab.studies.generate import load_run


def file_gain(y: torch.Tensor) -> torch.Tensor:
    """``y`` ``(B, 1, n)`` with each row scaled down to full scale where it peaks beyond it."""
    peak = y.abs().amax(dim=-1, keepdim=True)  # (B, 1, 1)
    return y / peak.clamp(min=1.0)


@torch.no_grad()
def measure(run_dir: str, clips: int = 12) -> tuple[list[dict], list[dict], str]:
    """Per-clip rows, per-path-and-writer rows, and the inversion's name."""
    run = load_run(run_dir)
    spec, c = run.spec, run.spec.config
    idx = run.val_idx[:clips]
    x = run.clips.waveforms[idx].float()  # (n, 1, samples)
    mel = run.mels[idx].float()  # (n, 1, n_mels, T)
    mu, _ = run.model.encode(mel)  # (n, D)
    decoded = run.model.decode(mu, mel.shape)  # (n, 1, n_mels, T)
    inverter = Inverter.for_run(run.path, spec)  # what the model makes
    round_trip = Inverter.for_run(run.path, spec, mels="analysed")
    heard = {"model": inverter(decoded, x.shape[-1]),
             "mel round trip": round_trip(mel, x.shape[-1])}
    power = lambda m: spec.mel_to_power(m).flatten(1).sum(1)  # (n,)
    mel_level = 10 * torch.log10(power(decoded) / power(mel))  # (n,)
    per_clip = []
    for k, i in enumerate(idx):
        y = heard["model"][k:k + 1]
        per_clip.append({"file": run.clips.files[i], "input peak": float(x[k].abs().max()),
                         "decoded mel level (dB)": float(mel_level[k]),
                         "audio level before the writer (dB)": float(level_db(x[k:k + 1], y)[0]),
                         "output peak": float(y.abs().max()),
                         "written level (dB)": float(level_db(
                             x[k:k + 1], limit_peaks(y, c.sample_rate))[0])})
    per_path = []
    for path, y in heard.items():
        for writer, out in (("limiter (shipped)", limit_peaks(y, c.sample_rate)),
                            ("whole-file gain", file_gain(y)), ("none", y)):
            lv = level_db(x, out)
            per_path.append({"path": path, "writer": writer,
                             "SC": float(spectral_convergence(x, out, c.n_fft,
                                                              c.hop_length).mean()),
                             "LSD (dB)": float(log_spectral_distance(x, out, c.n_fft,
                                                                     c.hop_length).mean()),
                             "level mean (dB)": float(lv.mean()),
                             "level worst (dB)": float(lv[lv.abs().argmax()])})
    return per_clip, per_path, inverter.name


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--clips", type=int, default=12, help="held-out clips per run (default 12)")
    a = p.parse_args(argv)
    for run_dir in a.runs:
        per_clip, per_path, name = measure(run_dir, a.clips)
        print(f"### {run_dir} (held-out clips through {name})\n")
        print(markdown_table(per_clip, ".2f").data, "\n")
        print(markdown_table(per_path).data, "\n", flush=True)


if __name__ == "__main__":
    main()
