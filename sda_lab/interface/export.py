"""Take a trained model elsewhere: one TorchScript file that plain PyTorch (or libtorch) loads
with ``torch.jit.load``, no sda-lab needed, working on whole clips. For hosts that stream
(nn~ in Max and Pure Data), :mod:`sda_lab.interface.nn_tilde` and
:mod:`sda_lab.interface.nn_tilde_export` (``export --for nn~``).

The file holds the representation, the VAE and the inversion:

- ``forward(wave)``: waveform ``(B, 1, samples)`` -> waveform ``(B, 1, clip_samples)``
  (analysis, posterior mean, decoder, inversion);
- ``encode(wave)`` -> posterior mean ``(B, latent_dim)``; ``decode(z)`` -> waveform;
- ``encode_mel(mel)`` -> ``(mu, logvar)``; ``decode_mel(z)`` -> mel ``(B, 1, n_mels, n_frames)``;
  ``waveform_to_mel(wave)``; ``mel_to_waveform(mel)``;
- attributes ``sample_rate``, ``latent_dim``, ``n_mels``, ``n_frames``, ``clip_samples``.

Waveforms in are checked inside the file as the package checks them (``ValueError``, one line):
float32, finite, peak at most ``MAX_ABS`` (integer PCM cast, not scaled, is refused) and exactly
``clip_samples`` long (no silent padding or cutting).

The analysis (:meth:`AudioSpectrogram.waveform_to_mel`), the encoder, the decoder and the mel
de-normalisation are traced from the package's own code (their input checks run once while
tracing and are not part of the file); the inversion is the run's own magnitude for what its
model makes (its inverse fine-tuned on the decoded mels where it kept one, else its learned
inverse mel, else the NNLS start: :meth:`Inverter.for_run
<sda_lab.representation.inverter.Inverter.for_run>`), so ``mel_to_waveform`` is meant for the
model's mels (``decode_mel``'s): a mel computed from a recording is heard truest by
``listen --through mel``, not by the file. It is compiled from the package's own steps
(:meth:`Inverter.scripted <sda_lab.representation.inverter.Inverter.scripted>`), then fast
Griffin-Lim. Its phase start differs from ``listen``'s (PGHI runs in numba and cannot be
compiled), so the magnitudes match and the waveforms do not. Griffin-Lim starts from random
phases drawn from torch's global generator as the package draws them, so
``torch.manual_seed(s)`` before a call gives the package's output for the same seed, within
float rounding. Beside ``FILE`` the spectrogram settings, model config and each method's
shapes in the file's own sizes (``shapes``) are written as ``FILE.json``.

Why TorchScript and not ``torch.export``: nn~ and libtorch hosts load TorchScript, and one
file keeps several methods; ``torch.jit`` warns that it is deprecated in torch 2.14 but works
in 2.11-2.14 (``tests/test_export.py`` loads the file in a process without sda-lab).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Tuple

import torch
from torch import nn

from ..representation.inverter import Inverter
from ..representation.scripted import MAX_ABS, check_audio, trace_method
from ..studies.descriptors import clip_length

__all__ = ["EXPORT_FORMAT", "export_model", "export_run", "run_checkpoint_for", "ExportedVAE"]

EXPORT_FORMAT = 1


class ExportedVAE(nn.Module):
    """What :func:`export_model` scripts; see the module docstring for the methods."""

    def __init__(self, model, spec, inverter: Inverter | None = None) -> None:
        super().__init__()
        c, mc = spec.config, model.config
        self.sample_rate = int(c.sample_rate)
        self.latent_dim = int(mc.latent_dim)
        self.n_mels = int(mc.n_mels)
        self.n_frames = int(mc.n_frames)
        self.clip_samples = int(clip_length(spec, mc.n_frames))
        inverter = inverter or Inverter(spec)  # without one: the NNLS start
        self.inv = inverter.scripted()
        self.hop_length = int(c.hop_length)
        self.max_abs = MAX_ABS
        samples = self.clip_samples
        self.analysis = trace_method(spec.waveform_to_mel, torch.zeros(2, 1, samples))
        mel = torch.rand(2, 1, mc.n_mels, mc.n_frames)  # (2, 1, n_mels, T)
        self.encoder = trace_method(model.encoder, mel)
        self.decoder = trace_method(model.decoder, torch.zeros(2, mc.latent_dim))

    @torch.jit.export
    def mel_to_waveform(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised mel ``(B, 1, n_mels, T)`` -> waveform ``(B, 1, (T - 1) * hop)``, or
        ``clip_samples`` when ``T == n_frames``."""
        mag = self.inv.magnitude(mel)  # (B, n_stft, T)
        frames = mel.shape[3]
        length = self.clip_samples if frames == self.n_frames else (frames - 1) * self.hop_length
        # Griffin-Lim's random start, drawn as the package draws it (torch's global generator)
        angles = torch.rand(mag.shape, dtype=torch.complex64)  # (B, n_stft, T)
        angles, _ = self.inv.gl_steps(mag, angles, torch.zeros_like(angles), self.inv.gl_iters,
                                      length)
        return self.inv.waveform(mag, angles, length).unsqueeze(1)  # (B, 1, samples)

    def _check_clip(self, wave: torch.Tensor, what: str) -> None:
        """A clip the model was trained on: float32 audio in [-1, 1], ``clip_samples`` long."""
        check_audio(wave, what, self.max_abs)
        if wave.shape[2] != self.clip_samples:
            raise ValueError(what + " expects clips of " + str(self.clip_samples)
                             + " samples (this model's clip), got " + str(wave.shape[2])
                             + "; cut or pad to that length")

    @torch.jit.export
    def waveform_to_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, 1, clip_samples)`` -> normalised mel ``(B, 1, n_mels, T)``."""
        self._check_clip(wave, "waveform_to_mel")
        return self.analysis(wave)

    @torch.jit.export
    def encode_mel(self, mel: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mel ``(B, 1, n_mels, n_frames)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``."""
        return self.encoder(mel)

    @torch.jit.export
    def decode_mel(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, latent_dim)`` -> mel ``(B, 1, n_mels, n_frames)``."""
        return self.decoder(z)

    @torch.jit.export
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, 1, clip_samples)`` -> posterior mean ``(B, latent_dim)``."""
        self._check_clip(wave, "encode")
        mu, _ = self.encoder(self.analysis(wave))
        return mu

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, latent_dim)`` -> waveform ``(B, 1, clip_samples)``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError("decode expects (batch, " + str(self.latent_dim) + "), got "
                             + str(z.shape))
        return self.mel_to_waveform(self.decoder(z))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, 1, clip_samples)`` -> its reconstruction, same shape."""
        return self.decode(self.encode(wave))


def export_model(model, spec, path: str | Path, inverter: Inverter | None = None) -> Path:
    """Script ``model`` (a ConvVAE) with ``spec`` and ``inverter``'s magnitude (default: the
    NNLS start) into the TorchScript file ``path``, and write ``path`` + ``.json`` beside it
    (spectrogram settings, model config, the inversion, format, torch version). Both are written
    atomically. A frozen copy is traced (``model`` keeps its mode, device and gradients); the
    file's outputs carry no autograd graph.

    Raises
    ------
    sda_lab.core._io.WriteError
        ``path``'s folder cannot be written.
    """
    from ..core._io import atomic_write, atomic_write_json

    path = Path(path)
    with warnings.catch_warnings():  # torch.jit's deprecation notice (module docstring)
        warnings.simplefilter("ignore")
        inverter = inverter or Inverter(spec)
        scripted = torch.jit.script(ExportedVAE(model, spec, inverter))
        atomic_write(path, lambda f: torch.jit.save(scripted, f))
    atomic_write_json(sidecar_path(path), {
        "format": EXPORT_FORMAT, "torch": torch.__version__, "file": path.name,
        "methods": ["forward", "encode", "decode", "encode_mel", "decode_mel",
                    "waveform_to_mel", "mel_to_waveform"],
        "shapes": _shapes(scripted.clip_samples, int(model.config.latent_dim),
                          int(model.config.n_mels), int(model.config.n_frames)),
        "sample_rate": int(spec.config.sample_rate), "clip_samples": scripted.clip_samples,
        "spectrogram_config": asdict(spec.config), "model_config": asdict(model.config),
        "inversion": inverter.scripted_name,
        "phases": "Griffin-Lim draws its initial phases from torch's global generator: "
                  "call torch.manual_seed(s) first for reproducible audio"})
    return path


def _shapes(samples: int, latent: int, n_mels: int, frames: int) -> dict[str, str]:
    """Each method's input and output, in the file's own sizes (``FILE.json``'s ``shapes``)."""
    wave, z, mel = f"(batch, 1, {samples})", f"(batch, {latent})", f"(batch, 1, {n_mels}, {frames})"
    return {"forward": f"{wave} -> {wave}", "encode": f"{wave} -> {z}",
            "decode": f"{z} -> {wave}", "encode_mel": f"{mel} -> ({z}, {z})",
            "decode_mel": f"{z} -> {mel}", "waveform_to_mel": f"{wave} -> {mel}",
            "mel_to_waveform": f"{mel} -> {wave}"}


def sidecar_path(path: str | Path) -> Path:
    """``FILE.json`` beside the export ``FILE``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def export_run(run: str | Path, out: str | Path) -> Path:
    """Export a run folder of ``python -m sda_lab train`` (``best.pt`` preferred, else
    ``checkpoint.pt``) with its own inversion (its learned inverse mel where it has one) to
    ``out``. Raises ``FileNotFoundError`` (one line) when ``run`` is no
    run folder, ``ValueError`` for an unreadable checkpoint, ``WriteError`` for ``out``."""
    _, out, ckpt = run_checkpoint_for(run, out)
    spec = ckpt.spectrogram()
    return export_model(ckpt.model, spec, out, Inverter.for_run(run, spec))


def run_checkpoint_for(run: str | Path, out: str | Path):
    """What an export of a run reads, checked before any work: ``(checkpoint path, out as a
    Path, the loaded checkpoint)`` (``best.pt`` preferred). Raises ``FileNotFoundError`` (one
    line) when ``run`` is no run folder, ``ValueError`` for an ``out`` that is a folder or an
    unreadable checkpoint, ``WriteError`` when ``out``'s folder cannot be written."""
    from ..core._io import check_writable_dir
    from ..training.rundir import RunDir
    from ..training.checkpoint import load_checkpoint

    ckpt_path = RunDir(run).run_checkpoint()
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out: expected a file name, got a folder: {out}")
    check_writable_dir(out.parent if str(out.parent) else Path("."), "--out")
    return ckpt_path, out, load_checkpoint(ckpt_path, device="cpu")
