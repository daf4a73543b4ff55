"""``python -m sda_lab export RUN --out FILE [--for torch|nn~]``: a TorchScript file.

``--for torch`` (the default) writes ``FILE`` for plain PyTorch or libtorch on whole clips
(``torch.jit.load`` it: ``forward``/``encode``/``decode`` on waveforms, and
``encode_mel``/``decode_mel``/``waveform_to_mel``/``mel_to_waveform``), see
:mod:`sda_lab.interface.export`. ``--for nn~`` writes a file that streams block by block in
nn~ (Max, Pure Data) and other libtorch hosts, with ``--latents`` latent channels and sliders
and ``--gl-iters`` Griffin-Lim iterations, see :mod:`sda_lab.interface.nn_tilde_export`. The
default stays ``torch``: the nn~ file keeps state between calls and answers 1.5 clips late,
which a caller handing it a clip does not expect. Both write ``FILE.json`` beside ``FILE``. RUN is a
folder written by ``python -m sda_lab train`` (``best.pt`` preferred). Errors are one line
naming RUN or the flag.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import _options as opt
from ._options import positive_int

HOSTS = ("torch", "nn~")
GL_ITERS = 32  # sda_lab.interface.nn_tilde.GL_ITERS (not imported: --help stays light)
MAX_GL_ITERS = 1000  # per clip; far beyond what a host can run in real time


def add_parser(subparsers) -> None:
    """Add ``export`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    e = subparsers.add_parser(
        "export", help="export a trained run as TorchScript (waveform in, waveform out)",
        description="Write the run's model, representation and inversion as one TorchScript "
                    "file FILE that torch.jit.load reads without sda-lab (--for torch, whole "
                    "clips) or that nn~ streams in Max and Pure Data (--for nn~), and "
                    "FILE.json.")
    e._sub_name = "export"
    e.add_argument("run", metavar="RUN", type=opt.path, help="run folder of 'python -m sda_lab train'")
    e.add_argument("--out", metavar="FILE", type=opt.path, required=True, help="TorchScript file to write")
    e.add_argument("--for", dest="host", choices=HOSTS, default="torch",
                   help="torch: whole clips, for PyTorch and libtorch (default); nn~: "
                        "streaming block by block, for nn~ in Max and Pure Data")
    e.add_argument("--latents", type=positive_int, default=None, metavar="K",
                   help="nn~: latent channels and sliders, the K dimensions the explorer "
                        "ranks highest (default 8)")
    e.add_argument("--gl-iters", type=positive_int, default=None, metavar="N",
                   help=f"nn~: Griffin-Lim iterations per clip (default {GL_ITERS})")
    e.set_defaults(func=run)


def check_out(out: Path, sidecar: Path) -> None:
    """``--out`` may replace only an earlier export (a file with its ``FILE.json`` beside it
    naming it): never a run's checkpoint, a recording or any other file.

    Raises
    ------
    ValueError
        One line naming ``--out`` and what the path holds.
    """
    if out.is_dir():
        raise ValueError(f"--out: expected a file name, got a folder: {out}")
    opt.check_file_out_folder(out)
    if not out.exists():
        return
    try:
        earlier = json.loads(sidecar.read_text()).get("file") == out.name
    except (OSError, ValueError, AttributeError):
        earlier = False
    if not earlier:
        raise ValueError(f"--out: expected a new file or an earlier export, got {out}, an "
                         "existing file that is not one (no export's .json beside it); choose "
                         "another name")


def run(args: argparse.Namespace) -> int:
    """Run ``export``; returns the exit status (errors propagate to the CLI's one line)."""
    from ..export import export_run, sidecar_path

    check_out(Path(args.out), sidecar_path(Path(args.out)))
    if args.gl_iters is not None and args.gl_iters > MAX_GL_ITERS:
        raise ValueError(f"--gl-iters: expected 1 to {MAX_GL_ITERS} Griffin-Lim iterations per "
                         f"clip, got {args.gl_iters}")

    if args.host == "torch":
        for flag, value in (("--latents", args.latents), ("--gl-iters", args.gl_iters)):
            if value is not None:
                raise ValueError(f"{flag}: applies to --for nn~ only, got it with --for torch")
        path = export_run(args.run, args.out)
        print(f"wrote {path} and {sidecar_path(path)} (torch.jit.load; see "
              f"{sidecar_path(path).name})")
        return 0
    from ..nn_tilde_export import export_run_nn_tilde

    path = export_run_nn_tilde(args.run, args.out, args.latents or 8, args.gl_iters)
    meta = json.loads(sidecar_path(path).read_text())
    lat = meta["latency_samples"]["forward"]
    names = ", ".join(d["attribute"] for d in meta["latents"])
    print(f"wrote {path} and {sidecar_path(path)}: nn~ methods forward, encode, decode "
          f"({len(meta['latents'])} latents: {names}); forward is {lat} samples "
          f"({lat / meta['sample_rate']:.2f} s) late; the host must run at "
          f"{meta['sample_rate']} Hz")
    return 0
