"""``python -m sda_lab blend RUN_A RUN_B FILE --alpha A --out OUT.wav [--space mel|latent]``.

Blend two runs on the same representation (:mod:`sda_lab.studies.blend`) on FILE's first
``--seconds`` (default: one clip of the models), cut into clips of the models' length as
``listen --through vae`` cuts them, each run hearing a clip as ``listen`` does (its posterior
mean refined by the run's ``posterior_steps``). ``--space mel`` (the default) mixes the two
runs' own reconstructions, ``(1 - A) * mel_a + A * mel_b``; ``--space latent`` mixes their
posterior means and decodes the mix with ``--decoder``'s model, and is refused unless the two
encoders agree on FILE's clips (one run fine-tuned from the other) or ``--force`` is given.
The audio is made by RUN_A's own inversion and written by :func:`sda_lab.core._io.write_wav`;
one line says what was blended, the next the written file's spectral convergence, log-spectral
distance and level against FILE, as ``listen`` prints them (undefined for a silent FILE).

Errors are one line naming the flag or path, before any work: a bad option, a run folder
without a checkpoint, two runs on different representations or mel shapes, no such file,
unreadable audio, an ``--out`` that exists (without ``--overwrite``) or is one of the inputs
(FILE, either checkpoint, either run's training files).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from . import _options as opt

SPACES = ("mel", "latent")  # sda_lab.studies.blend.SPACES (not imported: --help stays light)
MAX_SECONDS = 60.0  # an excerpt: every clip is decoded by both models and inverted at once
_SECONDS = f"a positive number of seconds, at most {MAX_SECONDS:g}"
alpha_option = opt._number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
seconds_option = opt._number(float, lambda v: 0 < v <= MAX_SECONDS, _SECONDS)


def add_parser(subparsers) -> None:
    """Add ``blend`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    p = subparsers.add_parser(
        "blend", help="blend two runs on the same representation, as WAV",
        description="Write FILE's first seconds blended between two runs: their own "
                    "reconstructions mixed (--space mel) or their latents mixed and decoded by "
                    "one of them (--space latent, only for a run fine-tuned from the other); "
                    "audio through RUN_A's inversion.")
    p._sub_name = "blend"
    p.add_argument("run_a", metavar="RUN_A", type=opt.path, help="run folder (alpha 0)")
    p.add_argument("run_b", metavar="RUN_B", type=opt.path, help="run folder (alpha 1)")
    p.add_argument("file", metavar="FILE", type=opt.path, help="audio file both runs hear")
    p.add_argument("--alpha", type=alpha_option, default=0.5,
                   help="0: RUN_A only, 1: RUN_B only (default 0.5)")
    p.add_argument("--out", metavar="OUT.wav", type=opt.path, required=True,
                   help="WAV file to write")
    p.add_argument("--space", choices=SPACES, default="mel",
                   help="mel: mix the two runs' own reconstructions (default); latent: mix "
                        "their posterior means, decoded by --decoder's model")
    p.add_argument("--decoder", choices=("a", "b"), default="a",
                   help="--space latent: whose decoder decodes the mix (default a)")
    p.add_argument("--force", action="store_true",
                   help="--space latent even when the two encoders do not agree on FILE")
    p.add_argument("--seconds", type=seconds_option, default=None,
                   help=f"how much of the file's start, at most {MAX_SECONDS:g} (default: one "
                        "clip of the models; a shorter file is used whole)")
    p.add_argument("--seed", type=opt.seed, default=0,
                   help="seeds the random phases (of the coefficients too small for PGHI)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def blend_file(run_a: str, run_b: str, file: str, out: str, alpha: float = 0.5,
               space: str = "mel", decoder: str = "a", force: bool = False,
               seconds: float | None = None, seed: int = 0, overwrite: bool = False) -> dict:
    """Do what ``blend`` does; returns ``{"out", "samples", "sample_rate", "file_seconds",
    "text", "limited_db"}`` and the written file's figures against FILE
    (:func:`~sda_lab.interface.commands.listen.written_figures`; ``text``: what was blended, one
    line; ``file_seconds``: FILE's length where it is shorter than asked, else None;
    ``limited_db``: the writer's largest gain reduction, dB, 0: none).
    Raises one-line errors (module docstring) before any work."""
    import torch

    from ...core._io import check_writable_dir, write_wav
    from ...studies.blend import BlendPair, check_alpha
    from ...studies.continuation import check_seconds
    from ...studies.descriptors import clip_length
    from ...training.rundir import RunDir
    from .listen import (_read, _training_files, check_audio_file, check_out_is_not_an_input,
                         check_wav_out, written_figures)

    check_alpha(alpha)
    if seconds is not None and not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds: expected {_SECONDS}, got {seconds!r}")
    out_path = check_wav_out(out)
    check_audio_file(file)
    inputs = {"FILE": Path(file)}
    for flag, run in (("RUN_A", run_a), ("RUN_B", run_b)):
        try:
            inputs[f"{flag}'s checkpoint"] = RunDir(run).run_checkpoint()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{flag}: {str(exc).removeprefix('RUN: ')}") from exc
        inputs.update(_training_files(run, flag))
    check_out_is_not_an_input(out_path, inputs)
    if out_path.exists() and not overwrite:
        raise ValueError(f"--out: {out} exists; choose another name or pass --overwrite")
    check_writable_dir(out_path.parent if str(out_path.parent) else ".", "--out folder")
    pair = BlendPair.open(run_a, run_b)
    sr = pair.spec.config.sample_rate
    clip = clip_length(pair.spec, pair.model_a.config.n_frames)
    want = clip if seconds is None else check_seconds(seconds, pair.spec.config, "--seconds")
    x = _read(file, sr, want)  # (1, 1, n)
    n = x.shape[-1]
    if n < pair.spec.config.n_fft:
        raise ValueError(f"FILE: {file} holds {n} samples at {sr} Hz, fewer than one FFT window "
                         f"({pair.spec.config.n_fft}); use a longer file")
    k = math.ceil(n / clip)
    clips = torch.nn.functional.pad(x, (0, k * clip - n)).view(k, 1, clip)  # (k, 1, clip)
    mels = pair.spec.waveform_to_mel(clips)  # (k, 1, n_mels, T)
    blended = pair.blend(mels, alpha, space, decoder, force, progress=True)
    y = pair.invert(blended.mel, clip, torch.Generator().manual_seed(seed),
                    progress=True)  # (k, 1, clip)
    y = y.reshape(1, 1, -1)[..., :n]  # (1, 1, n)
    if not bool(torch.isfinite(y).all()):
        raise ValueError(f"RUN_A: its inversion gave NaN/Inf samples for {file}; nothing written")
    limited_db = write_wav(out_path, y[0, 0], sr)
    return {**written_figures(x, y, pair.spec), "out": str(out_path), "samples": n,
            "sample_rate": sr, "file_seconds": n / sr if n < want else None,
            "text": blended.text, "limited_db": limited_db}


def run(args: argparse.Namespace) -> int:
    """Run ``blend``; returns the exit status (errors propagate to the CLI's one line)."""
    from ...core._io import limited_clause
    from .listen import figures_line

    r = blend_file(args.run_a, args.run_b, args.file, args.out, alpha=args.alpha,
                   space=args.space, decoder=args.decoder, force=args.force,
                   seconds=args.seconds, seed=args.seed, overwrite=args.overwrite)
    scaled = limited_clause(r["limited_db"])
    whole = (f"; FILE holds only {r['file_seconds']:.2f} s: all of it"
             if r["file_seconds"] is not None and args.seconds is not None else "")
    print(f"wrote {r['out']} ({r['samples'] / r['sample_rate']:.2f} s at {r['sample_rate']} Hz"
          f"{scaled}{whole}): {r['text']}")
    print(figures_line(r))
    return 0
