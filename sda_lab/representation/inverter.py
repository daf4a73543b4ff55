"""The one way from a normalised mel to sound: :class:`Inverter`.

A magnitude (the run's learned inverse mel, :mod:`sda_lab.representation.inverse_mel`, where it
has one; else the spectrogram's NNLS start, or the harmonic start), a phase start by phase
gradient heap integration (PGHI, :mod:`sda_lab.representation.phase`) and fast Griffin-Lim
iterations from it. ``listen``, ``generate``, the explorer, the run's audio figures and the
notebooks hear a run through it; the nn~ export compiles its scriptable parts.

A run keeps two learned inverses: ``RUN/inverse_mel.pt``, fitted on the mels of its training
clips (what the mel round trip hears), and ``RUN/decoded_inverse_mel.pt``, the same fine-tuned on
the model's decoded mels of those clips (:data:`MELS`: what the model makes is heard through it),
where that fit beat the first on them.

A run that trained its own vocoder (:mod:`sda_lab.representation.vocoder`, ``RUN/vocoder.pt``)
and kept it (its record says it beat this inversion on held-out files) is heard through the
vocoder instead: mel -> waveform in one network, no magnitude or phase step. Exports
(:meth:`Inverter.scripted`) do not carry a vocoder: they compile the mel-inverse path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..core._checks import check_frames, check_mel
from ..core.progress import progress_bar
from ..core.run_layout import file_sha256, find_checkpoint
from .inverse_mel import (DECODED_INVERSE_MEL_FILE, INVERSE_MEL_FILE, STARTS, InverseMel,
                          load_inverse_mel, mel_to_waveform_learned)
from .phase import PHASE_INITS
from .scripted import ScriptedInverter
from .vocoder import VOCODER_FILE, Vocoder, load_vocoder

__all__ = ["Inverter", "MELS", "PROGRESS_CLIPS", "checkpoint_sha256"]

PROGRESS_CLIPS = 16  # a progress bar past this many clips (a clip of a second: 0.05-0.5 s on a CPU)

MELS = ("decoded", "analysed")  # what a run's inversion is for: its model's mels, or audio's


def checkpoint_sha256(run_dir: Path) -> str | None:
    """SHA-256 of the checkpoint a run is heard through (``best.pt``, else ``checkpoint.pt``),
    None when it has neither: what ``decoded_inverse_mel.pt`` records it was fitted to."""
    path = find_checkpoint(run_dir)
    return None if path is None else file_sha256(path)[1]


def _check_spectrogram(inverse: InverseMel, spectrogram, path: Path) -> None:
    try:
        inverse.check_spectrogram(spectrogram)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _decoded_inverse(run_dir: Path, spectrogram) -> InverseMel | None:
    """The run's ``decoded_inverse_mel.pt`` where it is there, readable, of this
    representation and fitted to this run's checkpoint; else None, with one warning line
    saying why where a file was there (the run is then heard through ``inverse_mel.pt``)."""
    path = run_dir / DECODED_INVERSE_MEL_FILE
    if not path.is_file():
        return None
    why = None
    try:
        inverse = load_inverse_mel(path)
        _check_spectrogram(inverse, spectrogram, path)
    except ValueError as exc:
        why = str(exc)
    else:
        fitted_to = inverse.history.get("checkpoint_sha256")
        if fitted_to != checkpoint_sha256(run_dir):
            why = (f"{path} was fitted to another model than this run's checkpoint (another "
                   "run's file, or the run was trained on since)")
    if why is None:
        return inverse
    warnings.warn(f"{why}; what the model makes is heard through inverse_mel.pt instead "
                  "(training the run again fits it anew)", stacklevel=3)
    return None


class Inverter:
    """Normalised mel ``(B, 1, n_mels, T)`` -> waveform ``(B, 1, samples)``.

    Parameters
    ----------
    spectrogram : AudioSpectrogram
        The representation the mels are in.
    inverse : InverseMel, optional
        A learned inverse mel; its own start is used. ``ValueError`` (one line) if it was
        trained on another spectrogram config.
    phase : str
        The phase start, one of ``PHASE_INITS`` (default ``"pghi"``).
    start : str
        Without ``inverse``: the magnitude, ``"nnls"`` (default) or ``"harmonic"``.
    griffin_lim_iters : int, optional
        Fast Griffin-Lim iterations; None: the spectrogram's ``griffin_lim_iters``.
    vocoder : Vocoder, optional
        A run's neural vocoder: where given, :meth:`__call__` is the vocoder alone (``inverse``,
        ``phase`` and ``start`` then only describe :meth:`scripted`'s export path).
        ``ValueError`` (one line) if it was trained on another spectrogram config.
    """

    def __init__(self, spectrogram, inverse: InverseMel | None = None, phase: str = "pghi",
                 start: str = "nnls", griffin_lim_iters: int | None = None,
                 vocoder: Vocoder | None = None) -> None:
        if phase not in PHASE_INITS:
            raise ValueError(f"phase: expected one of {', '.join(PHASE_INITS)}, got {phase!r}")
        if start not in STARTS:
            raise ValueError(f"start: expected one of {', '.join(STARTS)}, got {start!r}")
        if inverse is not None:
            inverse.check_spectrogram(spectrogram)
        if vocoder is not None:
            vocoder.check_spectrogram(spectrogram)
        self.spectrogram, self.inverse, self.phase = spectrogram, inverse, phase
        self.vocoder = vocoder
        self.start = inverse.start if inverse is not None else start
        self.griffin_lim_iters = griffin_lim_iters

    @classmethod
    def for_run(cls, run_dir: str | Path, spectrogram, learned: bool | None = None,
                vocoder: bool | None = None, mels: str = "decoded", **kwargs) -> Inverter:
        """The run's own inversion: its ``inverse_mel.pt`` where the folder holds one.

        ``mels``: ``"decoded"`` (default: mels the model made, decoded, sampled or blended) hears
        them through ``decoded_inverse_mel.pt`` where the run kept one (module docstring), else
        as ``"analysed"``; ``"analysed"`` (mels computed from audio: the mel round trip) through
        ``inverse_mel.pt``.

        ``learned``: None (default) uses the file if present (an unreadable one is warned
        about, one line, and the NNLS start used); True requires it (``FileNotFoundError`` or
        ``ValueError``, one line); False ignores it (the NNLS start). A file that kept
        its start (``history["kept"] == "start"``: the fit did not beat it) is heard as that
        start, with no network.

        ``vocoder``: None (default) hears the run through ``RUN/vocoder.pt`` where its record
        says it was kept (``history["kept"] == "vocoder"``: it beat this inversion on held-out
        files), else without it; False never uses it. An unreadable ``vocoder.pt`` is
        warned about (one line, ``UserWarning``) and the run heard without it.
        """
        if mels not in MELS:
            raise ValueError(f"mels: expected one of {', '.join(MELS)}, got {mels!r}")
        path = Path(run_dir) / INVERSE_MEL_FILE
        inverse = None
        if mels == "decoded" and learned is not False:
            inverse = _decoded_inverse(Path(run_dir), spectrogram)
        if inverse is None:
            if learned and not path.is_file():
                raise FileNotFoundError(f"RUN has no learned inverse mel ({path})")
            inverse = None
            if learned is not False and path.is_file():
                try:
                    inverse = load_inverse_mel(path)
                except ValueError as exc:  # unreadable: say so once, hear the run without it
                    if learned:
                        raise
                    warnings.warn(f"{exc}; the run is heard through the NNLS start (training "
                                  "the run again fits it anew)", stacklevel=2)
            if inverse is not None:
                _check_spectrogram(inverse, spectrogram, path)
        voc = None
        if vocoder is not False and (Path(run_dir) / VOCODER_FILE).is_file():
            try:
                voc = load_vocoder(Path(run_dir) / VOCODER_FILE)
            except ValueError as exc:  # unreadable: say so once, hear the run without it
                warnings.warn(f"{exc}; the run is heard through its own inversion ('python -m "
                              f"sda_lab train-vocoder RUN --restart' replaces the file)",
                              stacklevel=2)
                voc = None
            voc = voc if voc is not None and voc.kept else None
        if inverse is not None and inverse.history.get("kept") == "start":
            return cls(spectrogram, None, start=inverse.start, vocoder=voc, **kwargs)
        return cls(spectrogram, inverse, vocoder=voc, **kwargs)

    @property
    def name(self) -> str:
        """What turns mels into sound, in words (``"learned inverse mel (harmonic start) +
        PGHI + fast Griffin-Lim"``, ``"learned inverse mel fitted to the decoded mels (nnls
        start) + ..."``; ``"per-run HiFi-GAN vocoder"`` with a vocoder)."""
        if self.vocoder is not None:
            return "per-run HiFi-GAN vocoder"
        decoded = self.inverse is not None and self.inverse.history.get("inputs") == "given"
        magnitude = (f"learned inverse mel{' fitted to the decoded mels' if decoded else ''} "
                     f"({self.start} start)" if self.inverse is not None
                     else f"{'NNLS' if self.start == 'nnls' else 'harmonic'} magnitude")
        phase = {"pghi": "PGHI", "random": "random phase", "zero": "zero phase"}[self.phase]
        return f"{magnitude} + {phase} + fast Griffin-Lim"

    @property
    def scripted_name(self) -> str:
        """What :meth:`scripted` compiles, in words (Griffin-Lim instead of PGHI). With a
        vocoder it says the export does not carry it."""
        if self.vocoder is not None:
            return (Inverter(self.spectrogram, self.inverse, self.phase, self.start,
                             self.griffin_lim_iters).scripted_name
                    + " (the run's vocoder is not exported)")
        return self.name.replace("PGHI + fast Griffin-Lim", "fast Griffin-Lim from a given phase")

    def scripted(self, gl_iters: int | None = None, nnls_iters: int | None = None):
        """The same magnitude (the learned inverse with its start, or the start alone) in
        TorchScript-able pieces, for exported files
        (:class:`~sda_lab.representation.scripted.ScriptedInverter`). Its phase is Griffin-Lim
        from a phase handed in (random, or a previous clip's): PGHI runs in numba and cannot be
        compiled. ``gl_iters`` None: this inverter's ``griffin_lim_iters``, else the
        spectrogram's. A vocoder is not exported: the export is the mel-inverse path
        (:attr:`scripted_name` says so)."""
        return ScriptedInverter(self.spectrogram, self.inverse,
                                gl_iters=self.griffin_lim_iters if gl_iters is None else gl_iters,
                                nnls_iters=nnls_iters, start=self.start)

    @torch.no_grad()
    def __call__(self, mel: torch.Tensor, length: int | None = None,
                 generator: torch.Generator | None = None, progress: bool = False
                 ) -> torch.Tensor:
        """``mel`` ``(B, 1, n_mels, T)`` -> ``(B, 1, length)`` on ``mel``'s device (length
        ``(T - 1) * hop_length`` when None). ``generator`` draws the random phases of
        ``phase="random"``; PGHI, zero phase and a vocoder draw none. ``progress``: where ``B``
        is over :data:`PROGRESS_CLIPS`, the clips are inverted that many at a time under a
        progress bar (each clip's inversion is its own; only the random phases of the quietest
        bins, those PGHI leaves, may be drawn in another order).

        Raises
        ------
        ValueError
            On a bad mel, too few frames, or a ``length`` that does not fit ``T``.
        """
        if progress and mel.shape[0] > PROGRESS_CLIPS:
            parts = []
            with progress_bar(total=mel.shape[0], desc="invert", unit="clip", leave=False) as bar:
                for part in mel.split(PROGRESS_CLIPS):  # (<= PROGRESS_CLIPS, 1, n_mels, T)
                    parts.append(self(part, length, generator))
                    bar.update(part.shape[0])
            return torch.cat(parts)  # (B, 1, length)
        if self.vocoder is not None:
            c = self.spectrogram.config
            mel = check_mel(mel, c.n_mels)
            check_frames(mel.shape[-1], length, c.n_fft, c.hop_length)
            return self.vocoder(mel, length)  # (B, 1, length)
        return mel_to_waveform_learned(self.spectrogram, self.inverse, mel, self.phase,
                                       length=length, n_iter=self.griffin_lim_iters,
                                       generator=generator, start=self.start)
