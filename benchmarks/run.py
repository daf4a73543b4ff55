"""`make bench`: sda-lab measured against what researchers would otherwise use, in one run.

Writes ``benchmarks/out/bench-<date>.md`` (and prints it); ``benchmarks/RESULTS.md`` is the
curated record, ordered by question, which a run's tables are copied into by hand (a run never
overwrites it: its other sections come from the individual ``bench_*`` scripts). Sections:
1. mel inversion vs librosa.feature.inverse.mel_to_audio, batch 1 and 16, interleaved repeats
2. forward mel vs librosa.feature.melspectrogram
3. VAE training: sda-lab's trainer vs a bare PyTorch loop, samples/s and memory
4. the latent explorer's update latency
5. each notebook's execution time under nbval
6. parallel training runs: worker processes x threads (bench_sweep)
7. the live explorer while dragging, and the thread policy beside a busy kernel (bench_explorer)
8. the own-audio recipe on real recordings: `python -m sda_lab train --max-minutes 5`, held-out
   error against the mean image, and the explorer's top- vs lowest-ranked dimension
   (bench_own_audio; choosing the recipe: ``python -m benchmarks.bench_own_audio choose``)
9. what limits what I hear: every mel -> waveform path per material on held-out files, the
   learned inverse mel and PGHI beside NNLS and the true-magnitude bound (bench_hearing, at
   the sizes of :data:`HEARING_ARGS`; its full sizes: ``python -m benchmarks.bench_hearing``)

Usage: python -m benchmarks.run [--quick] [--skip-notebooks] [--only SECTION]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from sda_lab.data import make_default_dataset
from sda_lab.model.losses import vae_loss
from sda_lab.model.vae import ConvVAE
from sda_lab.representation.metrics import spectral_convergence
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.studies.evaluate import librosa_mel_to_audio
from sda_lab.studies.profiling import measure_training_step
from sda_lab.training.cache import load_or_train_default
from sda_lab.training.config import TrainConfig
from sda_lab.training.loop import train

from . import bench_explorer as live_explorer_bench
from . import bench_hearing, bench_own_audio, bench_sweep

ROOT = Path(__file__).resolve().parents[1]
# bench_hearing's options in `make bench` (small: it trains one inverse mel per material) and
# with --quick (a smoke run)
HEARING_ARGS = {"full": ["--clips", "10", "--clips-per-kind", "10", "--train-seconds", "30"],
                "quick": ["--clips", "2", "--clips-per-kind", "2", "--train-seconds", "2"]}


def median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_inversion(spec: AudioSpectrogram, clips: torch.Tensor, repeats: int) -> list[dict]:
    """Each inversion path and librosa on the same mels, timed back to back in this process.

    Timings are medians of ``repeats`` interleaved rounds (every path once per round, so load
    drift on a shared machine hits all alike); compare the ratios, not the absolute times.
    """
    paths = {
        "lstsq (torchaudio InverseMelScale + GL 64)":
            lambda m, n: spec.mel_to_waveform(m, n, method="lstsq"),
        f"sda-lab default (NNLS {spec.config.nnls_iters} + GL 64)":
            lambda m, n: spec.mel_to_waveform(m, n),
        f"nnls_long (NNLS {spec.config.quality_nnls_iters} + GL "
        f"{spec.config.quality_griffin_lim_iters})":
            lambda m, n: spec.mel_to_waveform(m, n, method="nnls_long"),
        "librosa mel_to_audio (NNLS + GL 64)": lambda m, n: librosa_mel_to_audio(spec, m, n),
    }
    rows = []
    for batch in (1, 16):
        x = clips[:batch]  # (batch, 1, 48000)
        mel = spec.waveform_to_mel(x)  # (batch, 1, 128, 94)
        times: dict[str, list[float]] = {k: [] for k in paths}
        outs: dict[str, torch.Tensor] = {}
        for r in range(repeats):  # interleaved, so drift hits every path alike
            for name, fn in paths.items():
                if name.startswith("nnls_long") and r >= max(1, repeats // 2):
                    continue  # the slow path gets half the repeats
                torch.manual_seed(r)
                np.random.seed(r)
                t0 = time.perf_counter()
                outs[name] = fn(mel, x.shape[-1])
                times[name].append(time.perf_counter() - t0)
        t_lstsq = statistics.median(times[next(iter(paths))])
        t_lib = statistics.median(times["librosa mel_to_audio (NNLS + GL 64)"])
        for name in paths:
            t = statistics.median(times[name])
            sc = float(spectral_convergence(x, outs[name]).mean())
            rows.append({"batch": batch, "path": name, "SC": sc, "ms": 1000 * t,
                         "x lstsq time": t / t_lstsq, "librosa time / this": t_lib / t,
                         "(1 - SC) per s of audio-ms": (1 - sc) / (1000 * t / batch)})
    return rows


def bench_forward(spec: AudioSpectrogram, clips: torch.Tensor, repeats: int) -> list[dict]:
    rows = []
    for batch in (1, 16):
        x = clips[:batch]
        xn = x[:, 0].numpy()
        t_ours, _ = median_time(lambda: spec.waveform_to_mel(x), repeats)
        c = spec.config
        t_lib, _ = median_time(lambda: [librosa.feature.melspectrogram(
            y=v, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, n_mels=c.n_mels,
            htk=True, norm=None) for v in xn], repeats)
        rows.append({"batch": batch, "sda-lab ms": 1000 * t_ours, "librosa ms": 1000 * t_lib,
                     "speed-up": t_lib / t_ours})
    return rows


def bare_loop(model: ConvVAE, mels: torch.Tensor, epochs: int, batch_size: int) -> float:
    """The same model, loss and optimizer with nothing else: the trainer's yardstick."""
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    n = mels.shape[0]
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            x = mels[perm[i:i + batch_size]]
            recon, mu, logvar = model(x)
            loss, _, _ = vae_loss(recon, x, mu, logvar)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * n / (time.perf_counter() - t0)


def bench_training(spec: AudioSpectrogram, epochs: int) -> list[dict]:
    mels = spec.waveform_to_mel(make_default_dataset(32).waveforms)  # (160, 1, 128, 94)
    torch.manual_seed(0)
    bare = bare_loop(ConvVAE(), mels, epochs, 32)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    train(ConvVAE(), mels, TrainConfig(epochs=epochs, lr=2e-3, device="cpu"))
    ours = epochs * mels.shape[0] / (time.perf_counter() - t0)
    step = measure_training_step(ConvVAE(), batch_size=32, device="cpu")
    return [{"loop": "bare PyTorch", "samples/s": bare, "relative": 1.0},
            {"loop": "sda-lab trainer (clipping, history, active units, tqdm)", "samples/s": ours,
             "relative": ours / bare},
            {"loop": "one step, batch 32 (profiling.measure_training_step)",
             "samples/s": step["samples_per_s"],
             "relative": f"activations {step['activation_mb']:.0f} MB + params/grads/AdamW "
                         f"{step['params_grads_adam_mb']:.0f} MB = {step['estimated_peak_mb']:.0f} MB"}]


def bench_explorer(spec: AudioSpectrogram, moves: int) -> list[dict]:
    from sda_lab.interface.widgets import LatentExplorer

    model = load_or_train_default(progress=True).model.cpu()
    clips = make_default_dataset(4)
    ex = LatentExplorer(model, spec, spec.waveform_to_mel(clips.waveforms), clips.labels)
    secs = sorted(ex.measure_latency(moves))
    return [{"updates": moves, "median ms": 1000 * statistics.median(secs),
             "p90 ms": 1000 * secs[int(0.9 * (len(secs) - 1))], "max ms": 1000 * secs[-1]}]


def bench_notebooks() -> list[dict]:
    rows = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(nb)], cwd=ROOT, capture_output=True, text=True)
        rows.append({"notebook": nb.name, "seconds": time.perf_counter() - t0,
                     "result": "passed" if proc.returncode == 0 else "FAILED"})
    return rows


def bench_hearing_section(quick: bool) -> str:
    """Section 9: what :func:`benchmarks.bench_hearing.main` prints, at :data:`HEARING_ARGS`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        bench_hearing.main(HEARING_ARGS["quick" if quick else "full"])
    return buffer.getvalue().rstrip()


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats (for a smoke run)")
    ap.add_argument("--skip-notebooks", action="store_true")
    ap.add_argument("--only-inversion", action="store_true",
                    help="section 1 only, printed (RESULTS.md is left alone)")
    ap.add_argument("--only", choices=("inversion", "sweep", "explorer", "own-audio", "hearing"),
                    help="one section only, printed (RESULTS.md is left alone)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" /
                                         f"bench-{time.strftime('%Y-%m-%d')}.md"))
    args = ap.parse_args()
    reps = 2 if args.quick else 5
    spec = AudioSpectrogram()
    clips = make_default_dataset(4).waveforms  # (20, 1, 48000), all five kinds

    if args.only_inversion or args.only == "inversion":
        print(table(bench_inversion(spec, clips, reps)))
        return
    if args.only == "sweep":
        print(bench_sweep.run())
        return
    if args.only == "explorer":
        print(live_explorer_bench.run(repeats=1 if args.quick else 3))
        return
    if args.only == "own-audio":
        print(bench_own_audio.section(minutes=1.0 if args.quick else 5.0))
        return
    if args.only == "hearing":
        print(bench_hearing_section(args.quick))
        return
    gpu = "no CUDA device" if not torch.cuda.is_available() else torch.cuda.get_device_name(0)
    parts = [
        "# sda-lab benchmarks\n",
        f"Written by `make bench` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"librosa {librosa.__version__}, {gpu}. Medians of {reps} interleaved repeats.\n",
        "## 1. Mel inversion, 1 s clips at 48 kHz\n",
        "Every path inverts the same mels; times are medians of interleaved rounds in one "
        "process (the nnls_long path gets half the rounds). librosa gets each mel divided by its "
        "peak (same answer, see `sda_lab.studies.evaluate`), and runs clip by clip: it has no "
        "batch mode. SC is spectral convergence against the original (lower is better); the last "
        "column is quality per millisecond spent on one second of audio.\n",
        table(bench_inversion(spec, clips, reps)),
        "\n## 2. Forward mel (waveform -> mel power)\n",
        table(bench_forward(spec, clips, 3 * reps)),
        "\n## 3. VAE training on the CPU, batch 32\n",
        table(bench_training(spec, epochs=2 if args.quick else 4)),
        "\n## 4. Latent explorer: one slider release (decode + Griffin-Lim + redraw)\n",
        table(bench_explorer(spec, moves=10 if args.quick else 30)),
        "\n## 6. Training sweeps\n",
        bench_sweep.run(),
        "\n## 7. Live explorer and thread policy\n",
        live_explorer_bench.run(repeats=1 if args.quick else 3),
        "\n## 8. Your own audio: the shipped recipe on real recordings\n",
        bench_own_audio.section(minutes=1.0 if args.quick else 5.0),
        "\n## 9. " + bench_hearing_section(args.quick).removeprefix("## "),
    ]
    if not args.skip_notebooks:
        parts += ["\n## 5. Notebooks under nbval (`pytest notebooks/NN.ipynb`, whole process)\n",
                  table(bench_notebooks())]
    text = "\n".join(parts) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
