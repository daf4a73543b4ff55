"""Blending two trained runs on the same representation.

Two runs (folders of ``python -m sda_lab train``) whose mel representation is the same (the
:data:`REPRESENTATION_FIELDS` of their spectrogram configs) and whose models take the same mel
shape ``(n_mels, n_frames)`` can be blended in one of two spaces (``space``):

- ``"mel"`` (always possible): each run reconstructs the same input clip through ITS OWN model
  (its posterior mean as the run hears a file, then its decoder), and the two decoded mels (the
  representation's normalised values in [0, 1], e.g. dB over the floor) are mixed,
  ``(1 - alpha) * mel_a + alpha * mel_b``. Nothing latent is shared: this is a cross-fade of
  the two models' pictures of the clip.
- ``"latent"``: the two runs' posterior means are mixed, ``(1 - alpha) * z_a +
  alpha * z_b``, and decoded by ONE model (``decoder``: ``"a"`` or ``"b"``). This needs the
  same architecture and latent size, and is only meaningful when the two latent spaces are
  aligned, i.e. when one run was fine-tuned from the other (the same start): two separately
  trained models put the same sound at unrelated latents. The alignment is checked on the input
  clips themselves: the cosine similarity of the two encoders' posterior means, clip by clip
  (:meth:`BlendPair.posterior_cosine`); below :data:`ALIGNED_COSINE` on average the latent
  blend is refused unless ``force`` is given.

A run hears a clip at its encoder's posterior mean refined on the clip's own loss by the run's
``TrainConfig.posterior_steps`` (:func:`~sda_lab.training.posterior.heard_means`), as
``listen --through vae`` plays it: a blend's ends are the mels ``listen`` decodes for each run
(the audio of both through run A's inversion). The alignment check compares the encoders' own
means, before any refinement.

Audio is always made by run A's own inversion (:meth:`Inverter.for_run
<sda_lab.representation.inverter.Inverter.for_run>` of run A), and :attr:`Blended.text` says
so, with what was blended, in one line.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..model.vae import ConvVAE
from ..representation.inverter import Inverter
from ..representation.spectrogram import AudioSpectrogram
from ..training.config import TrainConfig
from ..training.posterior import heard_means

__all__ = ["SPACES", "DECODERS", "ALIGNED_COSINE", "REPRESENTATION_FIELDS", "Blended",
           "BlendPair", "blend", "check_alpha"]

SPACES = ("mel", "latent")
DECODERS = ("a", "b")
ALIGNED_COSINE = 0.9  # mean posterior-mean cosine from which two latent spaces count as aligned
# the SpectrogramConfig fields that decide what a mel value means (the rest choose an inversion)
REPRESENTATION_FIELDS = ("sample_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max",
                         "power", "scale", "db_floor")


def check_alpha(alpha) -> float:
    """``alpha`` as a float in [0, 1], else ``ValueError`` (one line naming ``alpha``)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(alpha, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1] (0: run A, 1: run B), got "
                         f"{alpha!r}")
    return value + 0.0  # -0.0 -> 0.0


def _heard_as(config: TrainConfig) -> str:
    n = config.posterior_steps
    return f"{n} step{'s' if n != 1 else ''}" if n else "the encoder's mean"


def _differences(a: dict, b: dict, keys) -> str:
    return ", ".join(f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k))


@dataclass
class Blended:
    """One blend: ``mel`` ``(B, 1, n_mels, T)`` (normalised, to invert with run A's
    inversion), ``alpha``, ``space`` and ``decoder`` (``"a"``/``"b"`` for ``space="latent"``,
    None for ``"mel"``), ``cosine`` ``(B,)`` the two encoders' posterior-mean cosine per clip
    (None when the latent sizes differ), ``aligned`` (mean cosine >= :data:`ALIGNED_COSINE`),
    and ``text``: what was blended, in one line."""

    mel: torch.Tensor
    alpha: float
    space: str
    decoder: str | None
    cosine: torch.Tensor | None
    aligned: bool
    text: str


@dataclass
class BlendPair:
    """Two opened runs to blend: their models (eval mode), the shared spectrogram, run A's
    inversion and each run's training config (how it hears a clip). Open with :meth:`open`."""

    run_a: Path
    run_b: Path
    model_a: ConvVAE
    model_b: ConvVAE
    spec: AudioSpectrogram
    inverter: Inverter
    train_a: TrainConfig
    train_b: TrainConfig
    _heard: dict = field(default_factory=dict, repr=False, compare=False)  # clip -> means
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def open(cls, run_a: str | Path, run_b: str | Path, device: str = "cpu") -> BlendPair:
        """Load both runs' checkpoints (:meth:`RunDir.run_checkpoint
        <sda_lab.training.rundir.RunDir.run_checkpoint>`) and run A's inversion.

        Raises
        ------
        FileNotFoundError
            Either folder is not a run (one line naming ``RUN_A`` or ``RUN_B``).
        ValueError
            One line naming the difference: the two spectrogram configs differ in a
            :data:`REPRESENTATION_FIELDS` field, or the models take another mel shape; an
            unreadable checkpoint.
        """
        from ..training.checkpoint import load_checkpoint
        from ..training.rundir import RunDir

        ckpts = []
        for flag, run in (("RUN_A", run_a), ("RUN_B", run_b)):
            try:
                ckpts.append(load_checkpoint(RunDir(run).run_checkpoint(), device=device))
            except (FileNotFoundError, ValueError) as exc:
                raise type(exc)(f"{flag}: {str(exc).removeprefix('RUN: ')}") from exc
        ca, cb = (asdict(c.spectrogram_config) for c in ckpts)
        diff = _differences(ca, cb, REPRESENTATION_FIELDS)
        if diff:
            raise ValueError(f"RUN_B: its spectrogram config differs from RUN_A's ({diff}); "
                             f"only runs on the same representation can be blended")
        ma, mb = (c.model.config for c in ckpts)
        diff = _differences(asdict(ma), asdict(mb), ("n_mels", "n_frames"))
        if diff:
            raise ValueError(f"RUN_B: its model takes mels of another shape than RUN_A's "
                             f"({diff}); only runs on the same mel shape can be blended")
        spec = ckpts[0].spectrogram()
        return cls(Path(run_a), Path(run_b), ckpts[0].model.eval(), ckpts[1].model.eval(),
                   spec, Inverter.for_run(run_a, spec), ckpts[0].train_config or TrainConfig(),
                   ckpts[1].train_config or TrainConfig())

    # -- checks ------------------------------------------------------------------------------

    def architecture_difference(self) -> str:
        """How the two models' architectures differ (``"latent_dim 4 vs 8, ..."``), or ``""``
        when they are the same (every :class:`~sda_lab.model.vae.VAEConfig` field but
        ``dropout``, which eval mode switches off)."""
        keys = [f.name for f in fields(self.model_a.config) if f.name != "dropout"]
        return _differences(asdict(self.model_a.config), asdict(self.model_b.config), keys)

    def check_mels(self, mels: torch.Tensor) -> None:
        """``ValueError`` (one line) unless ``mels`` is ``(B >= 1, 1, n_mels, T)`` finite float
        for both models."""
        c = self.model_a.config
        if not isinstance(mels, torch.Tensor) or mels.dim() != 4 or mels.shape[0] < 1:
            got = tuple(mels.shape) if isinstance(mels, torch.Tensor) else type(mels).__name__
            raise ValueError(f"mels: expected (B >= 1, 1, {c.n_mels}, {c.n_frames}), got {got}")
        self.model_a.encoder.check_input(mels)
        if not bool(torch.isfinite(mels).all()):
            raise ValueError("mels: expected finite values, got NaN/Inf")

    # -- the two models on the same clips ----------------------------------------------------

    @torch.no_grad()
    def _encode(self, model: ConvVAE, mels: torch.Tensor) -> torch.Tensor:
        device = next(model.parameters()).device
        return model.encode(mels.to(device))[0].cpu()  # (B, D) posterior means

    @torch.no_grad()
    def _decode(self, model: ConvVAE, z: torch.Tensor, shape) -> torch.Tensor:
        device = next(model.parameters()).device
        return model.decode(z.to(device), shape).cpu()  # (B, 1, n_mels, T)

    def posterior_means(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each run's encoder's posterior means of ``mels`` ``(B, 1, n_mels, T)``: ``(B, D_a)``
        and ``(B, D_b)``."""
        self.check_mels(mels)
        return self._encode(self.model_a, mels), self._encode(self.model_b, mels)

    def heard_means(self, mels: torch.Tensor, progress: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each run's posterior means of ``mels`` ``(B, 1, n_mels, T)`` as it hears them (the
        encoder's, refined by its ``posterior_steps``:
        :func:`~sda_lab.training.posterior.heard_means`): ``(B, D_a)`` and ``(B, D_b)``. Kept
        per clip (a clip's refinement does not depend on its batch), so each clip is refined
        once however it is asked for, by one thread at a time. ``progress``: a bar over the
        steps of a long refinement."""
        self.check_mels(mels)
        keys = [hashlib.sha1(repr(tuple(clip.shape)).encode()
                             + clip.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
                for clip in mels]
        with self._lock:
            first = {k: i for i, k in reversed(list(enumerate(keys))) if k not in self._heard}
            if first:
                todo = mels[sorted(first.values())]  # (b, 1, n_mels, T) the clips not yet heard
                mag = self.spec.mel_magnitude
                mu_a = heard_means(self.model_a, todo, self.train_a, mag, progress=progress)
                mu_b = heard_means(self.model_b, todo, self.train_b, mag, progress=progress)
                for j, i in enumerate(sorted(first.values())):
                    self._heard[keys[i]] = (mu_a[j], mu_b[j])  # (D_a,), (D_b,)
            heard = [self._heard[k] for k in keys]
        return (torch.stack([h[0] for h in heard]),  # (B, D_a)
                torch.stack([h[1] for h in heard]))  # (B, D_b)

    def reconstructions(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each run's own reconstruction of ``mels`` ``(B, 1, n_mels, T)`` (its heard posterior
        mean, :meth:`heard_means`, decoded by its decoder), as ``listen --through vae`` makes
        it: two ``(B, 1, n_mels, T)`` tensors."""
        mu_a, mu_b = self.heard_means(mels)
        return (self._decode(self.model_a, mu_a, mels.shape),
                self._decode(self.model_b, mu_b, mels.shape))

    @staticmethod
    def cosine(mu_a: torch.Tensor, mu_b: torch.Tensor) -> torch.Tensor | None:
        """Cosine similarity of two posterior means per clip, ``(B,)``: near 1 where the latent
        spaces are aligned (one run fine-tuned from the other); None when the latent sizes
        differ."""
        if mu_a.shape != mu_b.shape:
            return None
        return torch.nn.functional.cosine_similarity(mu_a, mu_b, dim=1)  # (B,)

    def posterior_cosine(self, mels: torch.Tensor) -> torch.Tensor | None:
        """:meth:`cosine` of the two encoders' posterior means of ``mels``, ``(B,)`` or None."""
        return self.cosine(*self.posterior_means(mels))

    # -- the blend ---------------------------------------------------------------------------

    def check(self, mels: torch.Tensor, alpha: float = 0.5, space: str = "mel",
              decoder: str = "a", force: bool = False
              ) -> tuple[float, torch.Tensor | None, bool, str]:
        """What :meth:`blend` checks before it refines or decodes anything; returns ``(alpha,
        cosine, aligned, cosine_text)``: ``cosine`` ``(B,)`` of the two encoders' posterior
        means (None when the latent sizes differ), whether their mean counts as aligned, and
        that in words.

        Raises
        ------
        ValueError
            One line: ``alpha`` outside [0, 1], an unknown ``space`` or ``decoder``, bad
            ``mels``; for ``space="latent"``, models of another architecture or latent size, or
            latents that are not aligned (mean posterior-mean cosine below
            :data:`ALIGNED_COSINE`) without ``force``.
        """
        alpha = check_alpha(alpha)
        if space not in SPACES:
            raise ValueError(f"space: expected one of {', '.join(SPACES)}, got {space!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder: expected one of {', '.join(DECODERS)}, got {decoder!r}")
        cosine = self.cosine(*self.posterior_means(mels))  # (B,) or None: the encoders' own
        mean_cos = None if cosine is None else float(cosine.mean())
        aligned = mean_cos is not None and mean_cos >= ALIGNED_COSINE
        n = f"{mels.shape[0]} clip{'s' if mels.shape[0] != 1 else ''}"
        cos_text = ("the latent sizes differ" if mean_cos is None else
                    f"the encoders' posterior-mean cosine A vs B {mean_cos:.2f} over {n}, "
                    f"{'at least' if aligned else 'below'} the {ALIGNED_COSINE:g} that counts "
                    f"as aligned")
        if space == "latent":
            diff = self.architecture_difference()
            if diff:
                raise ValueError(f"space='latent' (--space latent): RUN_B's model is another "
                                 f"architecture than RUN_A's ({diff}); blend the mels instead "
                                 f"(space='mel')")
            if not aligned and not force:
                raise ValueError(f"space='latent' (--space latent): the two runs' latents are "
                                 f"not aligned ({cos_text}); a latent mix is only meaningful "
                                 f"when one run was fine-tuned from the other; blend the mels "
                                 f"(space='mel') or force it (force=True, --force)")
        return alpha, cosine, aligned, cos_text

    def blend(self, mels: torch.Tensor, alpha: float = 0.5, space: str = "mel",
              decoder: str = "a", force: bool = False, progress: bool = False) -> Blended:
        """Blend the two runs on ``mels`` ``(B, 1, n_mels, T)`` (module docstring), each run's
        latent its heard posterior mean (:meth:`heard_means`; ``progress`` as there).

        Raises
        ------
        ValueError
            One line, before any refinement or decoding: what :meth:`check` raises.
        """
        alpha, cosine, aligned, cos_text = self.check(mels, alpha, space, decoder, force)
        a, b = str(self.run_a), str(self.run_b)
        audio = f"audio through A's inversion ({self.inverter.name})"
        means = ("the encoders' posterior means" if not (self.train_a.posterior_steps or
                                                        self.train_b.posterior_steps) else
                 f"posterior means refined as listen plays them: A {_heard_as(self.train_a)}, "
                 f"B {_heard_as(self.train_b)}")
        mu_a, mu_b = self.heard_means(mels, progress)  # (B, D_a), (B, D_b)
        if space == "mel":
            mel_a = self._decode(self.model_a, mu_a, mels.shape)  # (B, 1, n_mels, T)
            mel_b = self._decode(self.model_b, mu_b, mels.shape)  # (B, 1, n_mels, T)
            mel = (1 - alpha) * mel_a + alpha * mel_b  # (B, 1, n_mels, T)
            text = (f"blended the decoded mels: (1 - {alpha:g}) x A's reconstruction + "
                    f"{alpha:g} x B's, each run encoding the clip with its own encoder "
                    f"({means}) and decoding it with its own decoder (A = {a}, B = {b}); "
                    f"no latent is mixed, so the two latent spaces need not agree; {audio}")
            return Blended(mel, alpha, space, None, cosine, aligned, text)
        z = (1 - alpha) * mu_a + alpha * mu_b  # (B, D)
        model = self.model_a if decoder == "a" else self.model_b
        mel = self._decode(model, z, mels.shape)  # (B, 1, n_mels, T)
        caveat = ("meaningful only when one run was fine-tuned from the other (same start), as "
                  "the two encoders' agreement suggests" if aligned
                  else "FORCED although the latents are not aligned: the mix is not meaningful")
        text = (f"blended the latents: (1 - {alpha:g}) x A's posterior mean + {alpha:g} x B's "
                f"({means}), decoded by {decoder.upper()}'s decoder (A = {a}, B = {b}); "
                f"{caveat}: {cos_text}; {audio}")
        return Blended(mel, alpha, space, decoder, cosine, aligned, text)

    @torch.no_grad()
    def invert(self, mel: torch.Tensor, length: int | None = None,
               generator: torch.Generator | None = None, progress: bool = False
               ) -> torch.Tensor:
        """Run A's inversion: ``mel`` ``(B, 1, n_mels, T)`` -> ``(B, 1, length)``
        (``progress``: as :meth:`Inverter.__call__
        <sda_lab.representation.inverter.Inverter.__call__>`)."""
        return self.inverter(mel, length, generator=generator, progress=progress)


def blend(run_a: str | Path, run_b: str | Path, mels: torch.Tensor, alpha: float = 0.5,
          space: str = "mel", decoder: str = "a", force: bool = False,
          device: str = "cpu") -> Blended:
    """Open two runs (:meth:`BlendPair.open`) and blend them on ``mels`` ``(B, 1, n_mels, T)``
    (:meth:`BlendPair.blend`; module docstring). ``alpha`` (and ``space``, ``decoder``) are
    checked before either run is loaded."""
    check_alpha(alpha)
    if space not in SPACES:
        raise ValueError(f"space: expected one of {', '.join(SPACES)}, got {space!r}")
    return BlendPair.open(run_a, run_b, device).blend(mels, alpha, space, decoder, force)
