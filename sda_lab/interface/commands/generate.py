"""``python -m sda_lab generate RUN --n 16 [--prior gmm|normal] [--seed S] --out DIR``.

Samples ``--n`` latents from the prior (``gmm``: a Gaussian mixture fitted on the run's
training posterior means, :func:`sda_lab.studies.prior.fit_gmm_prior`; ``normal``: N(0, I)),
decodes and inverts them, and writes ``DIR/sample_000.wav`` ... and ``DIR/samples.csv``
(descriptors, nearest training and held-out clip with their mel MSE,
:func:`sda_lab.studies.generate.generate_run`). Prints the copying check
(:func:`sda_lab.studies.generate.copying_check`). RUN is a folder written by ``python -m sda_lab
train``; its training audio is reloaded from the folder recorded in its ``metrics.json``. Errors
are one line naming the flag or RUN.
"""

from __future__ import annotations

import argparse

from . import _options as opt


def add_parser(subparsers) -> None:
    """Add ``generate`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    from ...studies.prior import PRIORS

    g = subparsers.add_parser(
        "generate", help="sample new sounds from a trained run, checked against copying",
        description="Sample sounds from a run of 'python -m sda_lab train', write WAV files "
                    "and samples.csv (descriptors, nearest training and held-out clips) to DIR.")
    g._sub_name = "generate"
    g.add_argument("run", metavar="RUN", help="run folder of 'python -m sda_lab train'")
    g.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    g.add_argument("--n", type=opt.positive_int, default=16, help="sounds to sample (default 16)")
    g.add_argument("--prior", choices=PRIORS, default="gmm",
                   help="gmm: Gaussian mixture on the training posterior means (default); "
                        "normal: N(0, I)")
    g.add_argument("--seed", type=opt.seed, default=0, help="random seed of the samples (default 0)")
    g.add_argument("--no-f0", action="store_true", help="skip the f0 estimate (pYIN, the slow part)")
    g.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``generate``; returns the exit status (errors propagate to the CLI's one line)."""
    from ...studies.generate import generate_run

    table, check = generate_run(args.run, args.out, n=args.n, prior=args.prior, seed=args.seed,
                                f0=not args.no_f0)
    print(f"wrote {len(table)} WAV files and samples.csv to {args.out}")
    if check is None:
        print("copying check: not possible, the run has no held-out clips (--val-fraction 0)")
    else:
        print(f"copying check: {check['copy_share']:.0%} of {check['n']} samples are closer to a "
              f"training clip (mel MSE) than the closest of {check['n_heldout']} held-out clips "
              f"is ({check['heldout_min']:.4g}); {check['median_share']:.0%} closer than the "
              f"median held-out clip ({check['heldout_median']:.4g})")
    return 0
