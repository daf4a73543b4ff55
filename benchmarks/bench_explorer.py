"""The latent explorer while dragging, and the thread policy beside a second busy kernel.

``run()`` returns a markdown section with three measurements:

1. **A simulated drag** (in a fresh process per repeat): 45 slider values at 30 per second through
   the real observer of a live :class:`~sda_lab.interface.widgets.LatentExplorer` on the default
   model; the picture and audio renders each lane completes per second during the drag, the median
   time of one render, the time from the last value to its render, and whether the last picture and
   audio are the final value. Alone, and beside a second process that trains a VAE the whole time.
2. **The thread policy**: inverting 20 clips (64 Griffin-Lim iterations each, one at a time as
   the explorer does) alone and beside the busy trainer, under OpenMP's default wait policy, with
   ``OMP_WAIT_POLICY=PASSIVE`` in both processes, and with one torch thread in both.

3. **Audio preview** (``python -m benchmarks.bench_explorer --preview``, one process, a few
   minutes): the same drag on an *untrained* full-size ConvVAE (render cost depends on the
   architecture and the inversion, not on the weights; no default model to train), with every
   audio update inverted in full against the preview path (short NNLS + Griffin-Lim warm-started
   from the previous render, full inversion once the values stop), and the mel consistency
   (``sda_lab.representation.metrics.mel_consistency``, lower is better) of what each path plays
   along a drag.

Every number is the median over ``repeats`` fresh processes (the machine is shared and noisy);
ratios are against the default policy alone. ``python -m benchmarks.bench_explorer [repeats]``
prints the section.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {  # name -> environment of both processes
    "default (spinning OpenMP threads)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 torch thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}

_BUSY = """
import sys, torch
from sda_lab.model.losses import vae_loss
from sda_lab.model.vae import ConvVAE
torch.manual_seed(0)
model = ConvVAE()
opt = torch.optim.Adam(model.parameters(), 1e-3)
x = torch.rand(16, 1, 128, 94) * 0.5  # (16, 1, 128, 94)
first = True
while True:
    recon, mu, logvar = model(x)
    loss = vae_loss(recon, x, mu, logvar, kl_weight=1e-3)[0]
    opt.zero_grad(); loss.backward(); opt.step()
    if first:
        print("ready", flush=True); first = False
"""

_INVERT = """
import json, time, torch
from sda_lab.data import make_default_dataset
from sda_lab.representation.spectrogram import AudioSpectrogram
spec = AudioSpectrogram()
mels = spec.waveform_to_mel(make_default_dataset(4).waveforms)  # (20, 1, 128, 94)
spec.mel_to_waveform(mels[:1], length=48_000)  # warm-up
t0 = time.perf_counter()
for m in mels:
    spec.mel_to_waveform(m[None], length=48_000)  # (1, 1, 48000)
print(json.dumps({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()}))
"""

_DRAG = """
import json, torch
from sda_lab.data import make_default_dataset
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.training.loop import load_or_train_default
from sda_lab.interface.widgets import LatentExplorer
model = load_or_train_default(progress=False).model.cpu()
spec = AudioSpectrogram()
clips = make_default_dataset(8)
ex = LatentExplorer(model, spec, spec.waveform_to_mel(clips.waveforms), clips.labels,
                    clip_index=clips.labels.index("vowel"))
ex.simulate_drag(rank=0, changes=10, rate_hz=30)  # warm-up
ex.set_start(ex.start_menu.value)
s = ex.simulate_drag(rank=0, changes=45, rate_hz=30)
print(json.dumps({k: getattr(s, k) for k in ("seconds", "picture_renders", "audio_renders",
      "picture_per_s", "audio_per_s", "picture_ms", "audio_ms", "settle_ms", "final_matches")}))
"""


_PREVIEW = """
import json, statistics, torch
from sda_lab.data import make_default_dataset
from sda_lab.representation.metrics import mel_consistency
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.model.vae import ConvVAE
from sda_lab.interface.widgets import LatentExplorer, Preview
torch.manual_seed(0)
model = ConvVAE().eval()
with torch.no_grad():
    model.decoder.fc.weight.mul_(50)  # untrained: make the decoder listen to z
spec = AudioSpectrogram()
clips = make_default_dataset(2)
mels = spec.waveform_to_mel(clips.waveforms)  # (10, 1, 128, 94)
out = {"threads": torch.get_num_threads()}
for name, preview in (("full inversion every update", None), ("preview, full on settle", Preview())):
    ex = LatentExplorer(model, spec, mels, clips.labels, preview=preview, show_map=False)
    ex.simulate_drag(rank=0, changes=10, rate_hz=30)  # warm-up
    ex.set_start(ex.start_menu.value)
    s = ex.simulate_drag(rank=0, changes=45, rate_hz=30)
    out[name] = {k: getattr(s, k) for k in ("audio_per_s", "picture_per_s", "audio_ms",
                                            "settle_ms", "final_matches", "final_full")}
# what plays: 10 latents along a drag, each inverted by both paths (the preview warm-started
# from the one before, as in a drag)
r = ex.renderer
s0 = ex.sliders[0]
lo, hi = float(s0.value), float(s0.value) + 0.3 * (s0.max - s0.min)
pre, full = [], []
for k in range(10):
    z = ex.z.clone()
    z[ex.order[0]] = lo + (hi - lo) * k / 9
    mel = r._decode(z)
    w = r.invert(mel, preview=True)
    r.last_wave = w
    pre.append(float(mel_consistency(spec, mel, w)[0]))
    full.append(float(mel_consistency(spec, mel, r.invert(mel))[0]))
out["mel_consistency"] = {"preview": statistics.median(pre), "full": statistics.median(full)}
print(json.dumps(out))
"""


def measure_preview() -> dict:
    """One process: audio updates per second with and without the preview, and the quality of
    what each plays (see the module docstring, item 3)."""
    return _child(_PREVIEW, _env({}), busy=False)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(extra)
    return env


def _child(code: str, env: dict[str, str], busy: bool) -> dict:
    """Run ``code`` in a fresh interpreter (beside a busy trainer if ``busy``); its JSON line."""
    trainer = None
    try:
        if busy:
            trainer = subprocess.Popen([sys.executable, "-c", _BUSY], env=env, cwd=ROOT,
                                       stdout=subprocess.PIPE, text=True)
            assert trainer.stdout.readline().strip() == "ready"
            time.sleep(1.0)
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:  # say how it died: a bare CalledProcessError hides stderr
            raise RuntimeError(f"benchmark child exited with {proc.returncode} "
                               f"({'busy' if busy else 'alone'}, OMP_WAIT_POLICY="
                               f"{env.get('OMP_WAIT_POLICY', 'unset')}); stdout tail: "
                               f"{proc.stdout[-300:]!r}; stderr tail:\n{proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if trainer is not None:
            trainer.kill()
            trainer.wait()


def measure_thread_policies(repeats: int = 3) -> list[dict]:
    """Median seconds to invert 20 clips per policy, alone and beside the busy trainer."""
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(repeats):  # interleaved so slow phases of the shared machine hit all alike
        for name, extra in POLICIES.items():
            for busy in (False, True):
                t = _child(_INVERT, _env(extra), busy)["seconds"]
                times.setdefault((name, busy), []).append(t)
                print(f"  invert 20 clips, {name}, {'busy' if busy else 'alone'}: {t:.2f} s",
                      file=sys.stderr, flush=True)
    base = statistics.median(times[(next(iter(POLICIES)), False)])
    rows = []
    for name in POLICIES:
        alone = statistics.median(times[(name, False)])
        busy = statistics.median(times[(name, True)])
        rows.append({"policy": name, "alone_s": alone, "busy_s": busy,
                     "alone_vs_default": alone / base, "busy_vs_default_alone": busy / base,
                     "busy_over_alone": busy / alone,
                     "spread": f"{min(times[(name, False)]):.2f}-{max(times[(name, False)]):.2f} / "
                               f"{min(times[(name, True)]):.2f}-{max(times[(name, True)]):.2f}"})
    return rows


def measure_drags(repeats: int = 3, policies: tuple[str, ...] = (
        "default (spinning OpenMP threads)", "OMP_WAIT_POLICY=PASSIVE")) -> list[dict]:
    """Median drag statistics per policy, alone and beside the busy trainer."""
    rows = []
    runs: dict[tuple[str, bool], list[dict]] = {}
    for _ in range(repeats):
        for name in policies:
            for busy in (False, True):
                r = _child(_DRAG, _env(POLICIES[name]), busy)
                runs.setdefault((name, busy), []).append(r)
                print(f"  drag, {name}, {'busy' if busy else 'alone'}: {r}", file=sys.stderr,
                      flush=True)
    for (name, busy), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs)
               for k in ("picture_per_s", "audio_per_s", "picture_ms", "audio_ms", "settle_ms")}
        rows.append({"policy": name, "situation": "beside a busy trainer" if busy else "alone",
                     **med, "final_ok": all(r["final_matches"] for r in rs),
                     "picture_range": f"{min(r['picture_per_s'] for r in rs):.1f}-"
                                      f"{max(r['picture_per_s'] for r in rs):.1f}"})
    return rows


def run(repeats: int = 3) -> str:
    """The markdown section for benchmarks/RESULTS.md (about ``repeats`` x 2.5 minutes)."""
    drags = measure_drags(repeats)
    policies = measure_thread_policies(repeats)
    lines = [
        "## Latent explorer: live drag and a second busy kernel",
        "",
        f"A drag of 45 slider values at 30/s through the live explorer (default model), median of "
        f"{repeats} fresh processes; \"beside a busy trainer\" runs a second process training a "
        "VAE the whole time, with the same thread policy.",
        "",
        "| policy | situation | picture updates/s (range) | audio updates/s | one picture | "
        "one audio render | last value drawn after | final render = final value |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in drags:
        lines.append(f"| {r['policy']} | {r['situation']} | {r['picture_per_s']:.1f} "
                     f"({r['picture_range']}) | {r['audio_per_s']:.1f} | {r['picture_ms']:.0f} ms | "
                     f"{r['audio_ms']:.0f} ms | {r['settle_ms']:.0f} ms | "
                     f"{'yes' if r['final_ok'] else 'NO'} |")
    lines += [
        "",
        f"Thread policy: inverting 20 clips one by one (64 Griffin-Lim iterations), median of "
        f"{repeats}; ratios against the default policy alone.",
        "",
        "| policy (both processes) | alone | beside a busy trainer | alone / default | "
        "busy / default alone | busy / alone | range alone / busy (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in policies:
        lines.append(f"| {r['policy']} | {r['alone_s']:.2f} s | {r['busy_s']:.2f} s | "
                     f"{r['alone_vs_default']:.2f} | {r['busy_vs_default_alone']:.2f} | "
                     f"{r['busy_over_alone']:.2f} | {r['spread']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("repeats", nargs="?", type=int, default=3,
                   help="fresh processes per measurement (the median is reported)")
    p.add_argument("--preview", action="store_true",
                   help="measure the audio preview against the full inversion instead")
    a = p.parse_args(argv)
    if a.repeats < 1:
        p.error(f"repeats must be at least 1, got {a.repeats}")
    print(json.dumps(measure_preview(), indent=1) if a.preview else run(a.repeats))


if __name__ == "__main__":
    main()
