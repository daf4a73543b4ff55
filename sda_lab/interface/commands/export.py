"""``python -m sda_lab export RUN --out FILE``: a TorchScript file plain PyTorch loads.

Writes ``FILE`` (``torch.jit.load`` it: ``forward``/``encode``/``decode`` on waveforms, and
``encode_mel``/``decode_mel``/``waveform_to_mel``/``mel_to_waveform``) and ``FILE.json``
(spectrogram settings and model config), see :mod:`sda_lab.interface.export`. RUN is a folder
written by ``python -m sda_lab train`` (``best.pt`` preferred). Errors are one line naming RUN or
the flag.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    """Add ``export`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    e = subparsers.add_parser(
        "export", help="export a trained run as TorchScript (waveform in, waveform out)",
        description="Write the run's model, representation and inversion as one TorchScript "
                    "file FILE that torch.jit.load reads without sda-lab, and FILE.json.")
    e._sub_name = "export"
    e.add_argument("run", metavar="RUN", help="run folder of 'python -m sda_lab train'")
    e.add_argument("--out", metavar="FILE", required=True, help="TorchScript file to write")
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``export``; returns the exit status (errors propagate to the CLI's one line)."""
    from ..export import export_run, sidecar_path

    path = export_run(args.run, args.out)
    print(f"wrote {path} and {sidecar_path(path)} (torch.jit.load; see {sidecar_path(path).name})")
    return 0
