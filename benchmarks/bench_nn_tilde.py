"""nn~ streaming (issue 32): real-time factor of ``forward`` per host block size, its latency,
and what the scriptable phase start costs in spectral convergence against the Python path.

The model is the own-audio recipe's (48 kHz, 1 s clips, latent sequence of 384; untrained: time
does not depend on the weights) with a learned inverse mel of the default size (untrained, so
its residual is zero and its magnitude is its start, ``--start``), exported with
:func:`sda_lab.interface.nn_tilde_export.export_nn_tilde`. The input is the bundled instruments
(``data/examples/instruments``, resampled to 48 kHz, one after the other, repeated to
``--seconds``).

- **Real-time factor** per call: seconds the call took over the seconds of audio in its block,
  on one thread (``torch.set_num_threads(1)``; the C++ host ``at::set_num_threads(1)``), mean
  and max over the file's calls after the first two (TorchScript profiles and optimises a
  method on its first two calls: their max is a column of its own). Timed twice: by the
  thread's CPU time (``time.thread_time``, ``CLOCK_THREAD_CPUTIME_ID``: what a core of its own
  would take, whatever else runs) and by the wall clock (what this machine gave while shared;
  the header gives its load). A host needs every call below 1; the target is below 0.5 at
  4096 samples. Through Python (``torch.jit.load``)
  and through ``tests/cpp/nn_host.cpp`` (built as the tests build it; ``--no-cpp`` skips it).
- **Latency**: the file's ``forward`` latency (clip + hop) plus what nn~ adds, one block (two
  when it runs the model in its own thread).
- **Phase**: spectral convergence (SC) against the input, per 1 s clip taken every half clip,
  of the same magnitude (the mel round trip: NNLS or harmonic start) inverted by the Python path
  ``listen`` uses (PGHI + 64 fast Griffin-Lim iterations) and by the exported path (Griffin-Lim
  from the previous clip's phase where they overlap, zero elsewhere, ``--gl-iters``
  iterations); and of the whole overlap-added stream against the input.

Usage: python -m benchmarks.bench_nn_tilde [--seconds 28] [--blocks 2048 4096 8192]
       [--start nnls harmonic] [--gl-iters N] [--no-cpp] [--no-phase]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from sda_lab.data import example_folder
from sda_lab.interface.nn_tilde_export import export_nn_tilde
from sda_lab.representation.inverter import Inverter
from sda_lab.interface.plotting import markdown_table
from sda_lab.model.vae import ConvVAE
from sda_lab.representation import phase
from sda_lab.representation.inverse_mel import (InverseMel, InverseMelConfig, InverseMelNet,
                                                mel_to_magnitude)
from sda_lab.representation.metrics import spectral_convergence
from sda_lab.training.recipes import OWN_AUDIO_RECIPE

PYTHON_PATH_GL_ITERS = 64  # the spectrogram config's griffin_lim_iters, which listen uses


def instruments(seconds: float, sample_rate: int) -> torch.Tensor:
    """``(1, 1, n)``: the bundled instruments at ``sample_rate``, one after the other,
    repeated to ``seconds``."""
    parts = []
    for path in sorted((example_folder() / "instruments").iterdir()):
        if path.suffix.lower() in (".flac", ".wav"):
            x, sr = sf.read(path, dtype="float32", always_2d=True)
            x = torch.from_numpy(x.mean(1))
            parts.append(AF.resample(x, sr, sample_rate))
    x = torch.cat(parts)
    n = int(seconds * sample_rate)
    return x.repeat(n // len(x) + 1)[:n].view(1, 1, n)


def export(start: str, gl_iters: int | None, x: torch.Tensor, folder: Path) -> tuple[Path, dict]:
    """The own-audio recipe's model with an untrained learned inverse (``start``) -> file."""
    torch.manual_seed(0)
    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    model = ConvVAE(OWN_AUDIO_RECIPE.model).eval()
    c = spec.config
    config = InverseMelConfig(start=start)
    inverse = InverseMel(InverseMelNet(c.n_mels, c.n_stft, config).eval(), asdict(c), config,
                         {}, start)
    clips = x[0, 0, :8 * c.sample_rate].reshape(8, 1, c.sample_rate)  # (8, 1, 1 s)
    mels = spec.waveform_to_mel(clips)
    labels = [f"z{d}" for d in range(model.latent_dim)]  # no traversal: time only
    path = export_nn_tilde(model, spec, Inverter(spec, inverse), mels, folder / f"{start}.ts", 8, gl_iters,
                           labels)
    import json

    return path, json.loads(path.with_name(path.name + ".json").read_text())


def python_times(path: Path, x: torch.Tensor, block: int) -> list[tuple[float, float]]:
    """``(wall, thread CPU)`` seconds of each ``forward`` call on ``x`` in ``block``s."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = torch.jit.load(str(path))
    times = []
    with torch.inference_mode():
        for i in range(0, x.shape[-1] - block + 1, block):
            t0, c0 = time.perf_counter(), time.thread_time()
            m(x[..., i:i + block])
            times.append((time.perf_counter() - t0, time.thread_time() - c0))
    return times


def cpp_times(binary: Path, path: Path, x: torch.Tensor, block: int, sr: int
              ) -> list[tuple[float, float]]:
    """``forward``'s call times in the C++ host: its first two calls on silence (the host's
    check, as nn~'s registration test), then the file's."""
    with tempfile.TemporaryDirectory() as tmp:
        x[0, 0].numpy().astype(np.float32).tofile(Path(tmp) / "in.f32")
        done = subprocess.run([str(binary), str(path), str(Path(tmp) / "in.f32"), tmp,
                               str(block), str(sr), "1"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-1000:] + done.stderr[-1000:])
    times = [(float(line.split()[2]), float(line.split()[3]))
             for line in done.stdout.splitlines() if line.startswith("time forward ")]
    return times


def rtf_row(host: str, start: str, block: int, sr: int, times: list[tuple[float, float]]
            ) -> dict:
    """Real-time factors of one run, by the thread's CPU time (what one core of its own would
    take) and by the wall clock (what this machine, shared, gave); TorchScript profiles and
    optimises a method on its first two calls, which are counted apart."""
    t = np.array(times) / (block / sr)  # (calls, 2): wall, CPU
    first, wall, cpu = t[:2], t[2:, 0], t[2:, 1]
    return {"host": host, "start": start, "block": block, "block ms": round(1000 * block / sr, 1),
            "calls": len(t), "mean RTF (CPU)": round(float(cpu.mean()), 3),
            "max RTF (CPU)": round(float(cpu.max()), 3),
            "calls over 0.5 (CPU)": int((cpu > 0.5).sum()),
            "mean RTF (wall)": round(float(wall.mean()), 3),
            "max RTF (wall)": round(float(wall.max()), 3),
            "first 2 calls (CPU, wall)": f"{first[:, 1].max():.2f}, {first[:, 0].max():.2f}"}


def phase_rows(x: torch.Tensor, start: str, gl_iters: int) -> list[dict]:
    """SC against the input of the Python path's and the exported path's phase (module
    docstring), per clip and for the overlap-added stream."""
    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    c = spec.config
    clip, hop = c.sample_rate, c.sample_rate // 2
    window = torch.hann_window(2 * hop)
    n = x.shape[-1]
    paths = {f"Python path: PGHI + {PYTHON_PATH_GL_ITERS} GL": [],
             f"export: previous clip's phase + {gl_iters} GL": [],
             f"zero phase + {gl_iters} GL": []}
    streams = {k: torch.zeros(n + clip) for k in paths}
    prev = torch.zeros(clip)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for b in range(clip, n + 1, hop):
            ref = x[..., b - clip:b]  # (1, 1, clip)
            mag = mel_to_magnitude(spec, spec.waveform_to_mel(ref), None, start)  # (1, F, T)
            tail = torch.cat([prev[hop:], torch.zeros(hop)]).view(1, -1)
            carried = torch.stft(tail, c.n_fft, c.hop_length, window=torch.hann_window(c.n_fft),
                                 return_complex=True).angle()  # (1, F, T)
            waves = {}
            for name, init, iters in zip(paths, ("pghi", carried, "zero"),
                                         (PYTHON_PATH_GL_ITERS, gl_iters, gl_iters)):
                waves[name] = phase.griffin_lim(mag, c.n_fft, c.hop_length, iters, init=init,
                                                length=clip, generator=gen)[0]  # (clip,)
            prev = waves[f"export: previous clip's phase + {gl_iters} GL"]
            for name, w in waves.items():
                paths[name].append(float(spectral_convergence(
                    ref, w.view(1, 1, -1), c.n_fft, c.hop_length)[0]))
                streams[name][b - clip:b] += w * window
    rows = []
    inner = slice(clip, (n // hop - 1) * hop)  # where two windows overlap
    for name, scs in paths.items():
        whole = spectral_convergence(x[..., inner], streams[name][inner].view(1, 1, -1),
                                     c.n_fft, c.hop_length)
        rows.append({"start": start, "phase": name, "clips": len(scs),
                     "SC per clip (mean)": round(float(np.mean(scs)), 4),
                     "SC of the stream": round(float(whole[0]), 4)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=28.0, help="seconds of audio per run")
    p.add_argument("--blocks", type=int, nargs="+", default=[2048, 4096, 8192],
                   help="host buffer sizes (powers of 2, at least 2048)")
    p.add_argument("--start", nargs="+", default=["nnls", "harmonic"],
                   choices=["nnls", "harmonic"], help="the learned inverse's start")
    p.add_argument("--gl-iters", type=int, default=None,
                   help="Griffin-Lim iterations compiled in (default: the export's)")
    p.add_argument("--no-cpp", action="store_true", help="skip the C++ host")
    p.add_argument("--no-phase", action="store_true", help="skip the phase comparison")
    args = p.parse_args(argv)
    if args.seconds < 4:
        p.error(f"--seconds: expected at least 4, got {args.seconds}")
    bad = [b for b in args.blocks if b < 2048 or b & (b - 1)]
    if bad:
        p.error(f"--blocks: expected powers of 2 of at least 2048 (nn~'s), got {bad}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sr = OWN_AUDIO_RECIPE.spectrogram.sample_rate
    x = instruments(args.seconds, sr)
    binary = None
    if not args.no_cpp:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.nn_host import build_nn_host

        binary = build_nn_host()
    rows, phases, facts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for start in args.start:
            path, meta = export(start, args.gl_iters, x, Path(tmp))
            lat = meta["latency_samples"]["forward"]
            facts.append({"start": start, "GL iterations": meta["inversion"]["griffin_lim_iters"],
                          "forward latency (samples)": lat,
                          "forward latency (s)": round(lat / sr, 3),
                          "+ nn~ (block 4096)": round((lat + 4096) / sr, 3),
                          "+ nn~ threaded": round((lat + 2 * 4096) / sr, 3),
                          "clip's work at export (CPU s)":
                              round(sum(meta["step_seconds_at_export"]), 3)})
            for block in args.blocks:
                rows.append(rtf_row("Python", start, block, sr, python_times(path, x, block)))
                if binary is not None:
                    rows.append(rtf_row("C++", start, block, sr,
                                        cpp_times(binary, path, x, block, sr)))
            if not args.no_phase:
                phases += phase_rows(x, start, meta["inversion"]["griffin_lim_iters"])
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"## nn~ streaming: real-time factor of forward per block ({platform.node()}, "
          f"{os.cpu_count()} CPUs, 1 thread, load average {load} at the end, "
          f"{args.seconds:g} s of the bundled instruments at {sr} Hz, "
          f"{time.strftime('%Y-%m-%d')})\n")
    print(markdown_table(rows).data)
    print("\n## Latency\n")
    print(markdown_table(facts).data)
    if phases:
        print("\n## Phase: the Python path against the exported one (SC against the input)\n")
        print(markdown_table(phases).data)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
