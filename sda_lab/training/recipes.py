"""Named recipes: a representation, a model and a training configuration chosen together, with
the reason in one line (the measurements behind each are in ``benchmarks/RESULTS.md`` and the
notebooks it names).

- :data:`DEFAULT_RECIPE`: the model the latent explorer opens on (notebooks 02 and 05), trained on
  the synthetic default set by :func:`sda_lab.training.cache.load_or_train_default`.
- :data:`OWN_AUDIO_RECIPE`: the user's own recordings (``python -m sda_lab train``, notebook 06).

On the KL weight: the reference loss adds a per-element *mean* MSE to a per-sample *sum* of KL
over the latent dimensions. Against a Gaussian decoder's ELBO with noise ``sigma``, its weight
``w`` on one 128 x 94 mel (``P = 12,032`` elements) is a beta of ``w * P / (2 sigma^2)``
(:func:`sda_lab.model.losses.elbo_kl_weight`): at ``sigma = 0.1`` the reference weight 1 is beta
601,600, so the posterior collapses (notebooks 03-04), the explorer's 2e-4 is beta 120 and the
own-audio 1e-5 is beta 6.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..data.augment import NO_WAVEFORM, AugmentConfig
from ..model.vae import VAEConfig
from ..representation.spectrogram import AudioSpectrogram, SpectrogramConfig
from .config import TrainConfig

__all__ = ["Recipe", "DEFAULT_RECIPE", "OWN_AUDIO_RECIPE", "DEFAULT_CLIPS_PER_KIND"]


@dataclass(frozen=True)
class Recipe:
    """A representation, a model and a training configuration chosen together.

    Attributes
    ----------
    name : str
    spectrogram : SpectrogramConfig
        The mel representation the model is trained on.
    model : VAEConfig
    train : TrainConfig
    why : str
        One line: why these choices, and where the measurements are.
    """

    name: str
    spectrogram: SpectrogramConfig
    model: VAEConfig
    train: TrainConfig
    why: str

    def configs(self, **train_overrides) -> tuple[VAEConfig, TrainConfig]:
        """Copies of ``(model, train)``, the training overridden field by field
        (``configs(epochs=None, max_minutes=1.0)``); unknown fields raise ``TypeError``."""
        return replace(self.model), replace(self.train, **train_overrides)

    def audio_spectrogram(self, scale: str | None = None) -> AudioSpectrogram:
        """The recipe's :class:`~sda_lab.representation.spectrogram.AudioSpectrogram`, or the same
        with another ``scale`` ("log1p" or "db")."""
        config = self.spectrogram if scale is None else replace(self.spectrogram, scale=scale)
        return AudioSpectrogram(config)


DEFAULT_CLIPS_PER_KIND = 60  # 300 clips of the synthetic default set

# The measurements behind these choices: benchmarks/RESULTS.md, "Default-model recipe".
DEFAULT_RECIPE = Recipe(
    name="default model",
    spectrogram=SpectrogramConfig(scale="db"),
    model=VAEConfig(dropout=0.0),
    train=TrainConfig(epochs=40, lr=2e-3, kl_weight=2e-4, free_bits=0.0),
    why="dB mel, KL weight 2e-4 (beta about 120 at sigma 0.1), no free bits, no dropout: in "
        "the same 40 epochs 0.25x the mean image on its training clips and 0.29x on held-out "
        "synthetic clips (3 seeds), against 0.59x for the earlier log1p at 1e-3, with a top "
        "dimension that still moves the mel at least 8x more than its lowest (1e-4 spread the "
        "information evenly); benchmarks/RESULTS.md, section \"Default-model recipe\"")

OWN_AUDIO_RECIPE = Recipe(
    name="own audio",
    spectrogram=SpectrogramConfig(scale="db"),
    # a latent sequence: 16 values per latent frame, 24 frames (about 23 Hz) per 1 s clip; half
    # the plan's channels: about 2.9x the steps in the same minutes on a CPU
    model=VAEConfig(dropout=0.0, latent="sequence", time_halvings=2, latent_dim=384,
                    channels=(16, 32, 64, 128)),
    # mel shift: training mels moved up or down by up to 4 mel rows (a cheap pitch shift);
    # ema_decay: the weights' average is the model scored and saved; the spectral convergence
    # of the mel magnitudes beside the MSE: loud bins weigh as a listener hears them;
    # eval_share: on a small folder an epoch is a step or two, and evaluating after every one
    # took about a third of the training minutes
    # posterior_steps: a held-out file's latent is the encoder's guess refined on the file's
    # own loss (semi-amortised inference) where the run is heard
    train=TrainConfig(epochs=40, lr=2e-3, kl_weight=1e-5, free_bits=0.0, ema_decay=0.99,
                      augment=AugmentConfig(**NO_WAVEFORM, mel_shift=4),
                      spectral_convergence_weight=0.1, eval_share=0.05, posterior_steps=100),
    why="on real recordings log1p collapses, so dB; with a whole instrument held out, a latent "
        "sequence along time at KL weight 1e-5 (beta about 6 at sigma 0.1) cut the held-out "
        "error below the plan's one vector per clip in every fold, where the vector at either "
        "weight memorised the instruments it saw; at the 5-minute budget's 900 steps a mel "
        "shift, a weight average and 16 values per latent frame (not 8) each cut it further "
        "(benchmarks/RESULTS.md sections 8, 14 and 15); the mel magnitudes' spectral "
        "convergence in the loss (weight 0.1) brought the decoded audio of held-out files "
        "closer to the input in spectral convergence and level on drums, instruments and the "
        "synthetic set, where the MSE alone lost 3-5 dB and detail; half the plan's channels "
        "(0.24 M parameters, not 0.88 M) take about 2.9x the steps in the same 5 minutes, and "
        "the audio of held-out files came closer in every paired run; evaluating after every "
        "epoch of a small folder took a third of the training minutes, so the evaluations take "
        "5% (28-83% more steps); the encoder's guess of a held-out file's latent is far from "
        "the one the decoder needs, and 100 gradient steps on that file's own loss brought its "
        "audio closer in 15 of 16 runs over three folders (mean SC change -0.089 in nine "
        "seed-paired runs; benchmarks/RESULTS.md, section 17)")
