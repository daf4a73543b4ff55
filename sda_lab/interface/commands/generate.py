"""``python -m sda_lab generate RUN --n 16 [--prior gmm|normal] [--seed S] [--seconds S]
[--preset NAME] --out DIR``.

Samples ``--n`` (at most :data:`sda_lab.studies.generate.MAX_SAMPLES`) latents from the prior
(``gmm``: a Gaussian mixture fitted on the run's training posterior means,
:func:`sda_lab.studies.prior.fit_gmm_prior`; ``normal``: N(0, I)), decodes and inverts them in
batches, and writes each batch as it is made: ``DIR/sample_000.wav`` ... and ``DIR/samples.csv``
(status, descriptors with the reason where the pitch is empty, nearest training and held-out
clip with their mel MSE, each sample's relative distance and whether it is a copy,
:func:`sda_lab.studies.generate.generate_run`). ``--seconds`` makes
each sound that long (:mod:`sda_lab.studies.continuation`; prints how: sequence latents are
continued window by window, vector latents crossfade independent samples), the copying check
taking each sound's most copy-like decoded window. ``--preset`` starts every sound from a
preset the explorer saved for this run (:mod:`sda_lab.studies.presets`; another run's is
refused) instead of a prior sample. Near-silent and broken samples are dropped
(``--keep-silent`` writes the near-silent ones) and counted. Ctrl-C keeps the batches written.
Prints the copying check (:mod:`sda_lab.studies.copying`). RUN is a folder written by ``python
-m sda_lab train``; its own training and held-out files (the lists in its ``metrics.json``) are reloaded
from the folder recorded there, and a file added, gone or changed since is said in one line.
Errors are one line naming the flag or RUN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import _options as opt

QUIET_DB = 10.0  # samples this far below the training clips' level are called quieter


def add_parser(subparsers) -> None:
    """Add ``generate`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    from ...studies.continuation import MAX_SECONDS
    from ...studies.generate import MAX_SAMPLES, SILENT_DBFS
    from ...studies.prior import PRIORS

    count = opt._number(int, lambda v: 1 <= v <= MAX_SAMPLES,
                        f"a number of sounds from 1 to {MAX_SAMPLES}")

    g = subparsers.add_parser(
        "generate", help="sample new sounds from a trained run, checked against copying",
        description="Sample sounds from a run of 'python -m sda_lab train', write WAV files "
                    "and samples.csv (descriptors, nearest training and held-out clips) to DIR.")
    g._sub_name = "generate"
    g.add_argument("run", metavar="RUN", type=opt.path, help="run folder of 'python -m sda_lab train'")
    g.add_argument("--out", metavar="DIR", type=opt.path, required=True, help="output folder (created)")
    g.add_argument("--n", type=count, default=None,
                   help=f"sounds to sample, 1 to {MAX_SAMPLES} (default 16; 1 with --preset)")
    g.add_argument("--prior", choices=PRIORS, default="gmm",
                   help="gmm: Gaussian mixture on the training posterior means (default); "
                        "normal: N(0, I)")
    g.add_argument("--seed", type=opt.seed, default=0,
                   help="random seed of the samples (default 0): the same --seed and --n make "
                        "the same sounds; another --n draws others")
    g.add_argument("--seconds", type=opt._number(float, lambda v: 0 < v <= MAX_SECONDS,
                                                 f"a length in seconds above 0, at most "
                                                 f"{MAX_SECONDS:g}"),
                   default=None, help="length of each sound, continued past one clip "
                                      f"(at most {MAX_SECONDS:g}; default: one clip)")
    g.add_argument("--preset", metavar="NAME", type=opt.path, default=None,
                   help="start every sound from a preset of this run (a name in RUN/presets/, "
                        "saved by the explorer, or a preset file) instead of a prior sample; "
                        "--n defaults to 1, and the preset's length applies unless --seconds "
                        "is given")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--no-f0", action="store_true", help="skip the f0 estimate (pYIN, the slow part)")
    g.add_argument("--keep-silent", action="store_true",
                   help=f"also write near-silent samples (loudest 20 ms frame below "
                        f"{SILENT_DBFS:g} dBFS; dropped by default)")
    g.set_defaults(func=run)


def _spectrogram_config(run: Path):
    """The run's SpectrogramConfig from its metrics.json, None where that cannot be read (then
    loading the run says why)."""
    from ...representation.spectrogram import SpectrogramConfig
    from ...training.rundir import RunDir

    try:
        return SpectrogramConfig(**(RunDir(run).read_metrics() or {})["spectrogram_config"])
    except (ValueError, KeyError, TypeError):
        return None


def _level_line(sample_dbfs, run) -> str:
    """The written samples' level beside the training clips' (median loudest 20 ms frame), and
    a warning where the samples are much quieter: a blurred or collapsed model's are."""
    import numpy as np

    from ...representation.metrics import loudest_frame_dbfs

    sr = run.spec.config.sample_rate
    train = float(np.median(loudest_frame_dbfs(run.clips.waveforms[run.train_idx], sr).numpy()))
    made = float(np.median(sample_dbfs))
    line = (f"level: the samples' loudest 20 ms frame is {made:.1f} dBFS (median), the training "
            f"clips' {train:.1f} dBFS")
    if made < train - QUIET_DB:
        line += (f": the samples are {train - made:.0f} dB quieter than your sounds (turn them "
                 "up to listen; a model that learned your sounds would make them about as loud)")
    return line


def _check_out(out: Path, run: str) -> None:
    """``--out`` must not hold an earlier generate's files (``samples.csv``, ``sample_*.wav``)
    nor lie inside the run's training folder (the samples would join its data).

    Raises
    ------
    ValueError
        One line naming ``--out`` and what it holds or where it lies.
    """
    from ...training.rundir import RunDir

    if out.is_dir():
        earlier = sorted(p.name for p in out.iterdir()
                         if p.name == "samples.csv" or p.name.startswith("sample_"))
        if earlier:
            raise ValueError(f"--out: expected a folder without earlier samples, got {out} "
                             f"holding {', '.join(earlier[:3])}{', ...' if len(earlier) > 3 else ''}"
                             "; choose another folder")
    try:
        data = RunDir(run).data_folder()
    except (OSError, ValueError):
        data = None
    if data is not None and out.resolve().is_relative_to(Path(data).resolve()):
        raise ValueError(f"--out: expected a folder outside the run's training folder {data}, "
                         f"got {out}: the samples would join the training data")


def run(args: argparse.Namespace) -> int:
    """Run ``generate``; returns the exit status (errors propagate to the CLI's one line)."""
    import sys

    from ...core._io import check_writable_dir
    from ...core.progress import progress_bar
    from ...studies.continuation import check_seconds, describe
    from ...studies.copying import copying_sentence
    from ...studies.generate import SILENT_DBFS, generate_run, load_run
    from ...studies.presets import load_preset

    _check_out(Path(args.out), args.run)
    preset = None if args.preset is None else load_preset(args.run, args.preset)
    if args.seconds is not None:  # before anything is made, where the run says how
        config = _spectrogram_config(Path(args.run))
        if config is not None:
            check_seconds(args.seconds, config, "--seconds")
    check_writable_dir(args.out, "--out")  # before loading anything
    if args.n is None:
        args.n = 16 if preset is None else 1
    if preset is not None and preset.seconds is not None and args.seconds is None:
        args.seconds = preset.seconds
    if preset is not None and args.n > 1 and args.seconds is None:
        raise ValueError(f"--n: a preset without a length makes one sound, got --n {args.n}; "
                         "give --seconds to continue it in --n ways")
    run_ = load_run(args.run)
    for note in run_.notes:
        print(f"note: {note}")
    verdict = run_.metrics.get("verdict") or {}
    # the audio verdict's kinds, and the model-domain ones of a run interrupted before it was heard
    expect = {"partly learned": "blurred outlines of your files",
              "collapsed": "about one sound whatever the latent",
              "collapse": "about one sound whatever the latent"}
    if verdict.get("kind") not in (None, "learned"):
        other = "sounds no closer to your files than their average sound"
        print(f"note: this run's verdict is {verdict['sentence']}; expect "
              f"{expect.get(verdict['kind'], other)}")
    if preset is not None:
        print(f"start: preset {preset.name!r} ({len(preset.sliders)} named slider values"
              f"{', ' + preset.note if preset.note else ''})")
    if args.seconds is not None:
        print(f"length: {args.seconds:g} s each; {describe(run_.model.config)}")
    bar = progress_bar(total=args.n, unit="sound", desc="generate", disable=args.quiet, leave=False)

    def progress(done: int, n: int) -> None:
        bar.update(done - bar.n)

    try:
        table, check = generate_run(run_, args.out, n=args.n, prior=args.prior, seed=args.seed,
                                    f0=not args.no_f0, keep_silent=args.keep_silent,
                                    progress=progress, seconds=args.seconds, preset=preset)
    except KeyboardInterrupt as exc:
        done = getattr(exc, "samples_done", 0)
        kept = (f"their WAV files and samples.csv are kept in {args.out}" if done
                else "nothing was written")
        print(f"sda-lab: interrupted after {done} of {args.n} samples: {kept}", file=sys.stderr)
        return 130
    finally:
        bar.close()
    status = table["status"]
    written = table[table["file"] != ""]
    silent = int(status.str.contains("near-silent").sum())
    broken = int(status.str.contains("broken").sum())
    dropped = int(status.str.startswith("dropped").sum())
    print(f"wrote {len(written)} WAV files and samples.csv to {args.out}")
    if silent or broken:
        kept = (f"; the {silent} near-silent {'are' if silent != 1 else 'is'} kept "
                f"(--keep-silent)" if args.keep_silent and silent else "")
        print(f"{silent + broken} of {len(table)} samples failed the check: {silent} near-silent "
              f"(loudest 20 ms frame below {SILENT_DBFS:g} dBFS), {broken} broken (NaN/Inf); "
              f"{dropped} dropped{kept} (samples.csv's status column says which)")
    else:
        print(f"all {len(table)} samples passed the check (none near-silent: loudest 20 ms "
              f"frame at or above {SILENT_DBFS:g} dBFS; none broken)")
    if len(written):
        print(_level_line(written["loudest_20ms_dbfs"].to_numpy(float), run_))
    if args.no_f0:
        print("pitch: not estimated (--no-f0), f0_hz is empty; f0_note says so")
    else:
        pitched = int(written["f0_hz"].notna().sum())
        why = written["f0_note"][written["f0_note"] != ""].str.split(":").str[0]
        counts = ", ".join(f"{v} {k}" for k, v in why.value_counts().items())
        print(f"pitch (f0_hz): found for {pitched} of {len(written)} written samples"
              + (f"; empty for {counts} (f0_note says why per sample)" if counts else ""))
    if check is None:
        print("copying check: not possible, no sample was written")
    else:
        print(f"copying check: {copying_sentence(check)}"
              + ("; each sound by the most copy-like of its decoded windows" if args.seconds else ""))
    return 0
