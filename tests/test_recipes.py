import pytest

from sda_lab.model.losses import elbo_kl_weight
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.training.recipes import DEFAULT_RECIPE, OWN_AUDIO_RECIPE, Recipe

OWN_AUDIO_MODEL, OWN_AUDIO_TRAIN = OWN_AUDIO_RECIPE.model, OWN_AUDIO_RECIPE.train


def test_each_recipe_is_named_and_holds_its_three_configs():
    for recipe in (DEFAULT_RECIPE, OWN_AUDIO_RECIPE):
        assert isinstance(recipe, Recipe) and recipe.name and recipe.why
        assert "\n" not in recipe.why
    assert OWN_AUDIO_RECIPE.spectrogram.scale == "db"
    # the own-audio model is a latent sequence (16 values x 24 frames); ConvVAE() stays the plan's
    assert (OWN_AUDIO_MODEL.latent, OWN_AUDIO_MODEL.latent_frames) == ("sequence", 24)
    assert OWN_AUDIO_MODEL.latent_channels == 16 and DEFAULT_RECIPE.model.latent == "vector"
    # its augmentation works on mels alone (no waveforms needed: cached mels train it too)
    assert OWN_AUDIO_TRAIN.augment.mel_shift > 0 and not OWN_AUDIO_TRAIN.augment.on_waveform
    assert OWN_AUDIO_TRAIN.ema_decay is not None and DEFAULT_RECIPE.train.ema_decay is None
    assert DEFAULT_RECIPE.spectrogram.scale == "db"  # chosen over log1p (RESULTS.md)


def test_recipe_configs_are_copies_with_overrides():
    model_cfg, cfg = OWN_AUDIO_RECIPE.configs(epochs=None, max_minutes=1.0)
    assert cfg.max_minutes == 1.0 and cfg.kl_weight == OWN_AUDIO_TRAIN.kl_weight
    assert OWN_AUDIO_TRAIN.max_minutes is None and model_cfg.dropout == 0.0
    model_cfg.latent_dim = 3
    assert OWN_AUDIO_MODEL.latent_dim == 384  # the recipe itself is untouched
    with pytest.raises(TypeError):
        OWN_AUDIO_RECIPE.configs(no_such_field=1)


def test_recipe_spectrogram_takes_another_scale():
    assert isinstance(OWN_AUDIO_RECIPE.audio_spectrogram(), AudioSpectrogram)
    assert OWN_AUDIO_RECIPE.audio_spectrogram().config.scale == "db"
    assert OWN_AUDIO_RECIPE.audio_spectrogram("log1p").config.scale == "log1p"
    log1p = OWN_AUDIO_RECIPE.audio_spectrogram("log1p")
    assert log1p.config.n_mels == OWN_AUDIO_RECIPE.spectrogram.n_mels


def test_the_beta_in_the_recipes_words_is_the_right_way_up():
    """The docstring says the reference weight w is a beta of w * P / (2 sigma^2)."""
    import sda_lab.training.recipes as r

    assert "w * P / (2 sigma^2)" in r.__doc__ and "2 * sigma^2 / 12,032" not in r.__doc__
    assert round(elbo_kl_weight(1.0, 12_032, 0.1)) == 601_600
    assert round(elbo_kl_weight(DEFAULT_RECIPE.train.kl_weight, 12_032, 0.1)) == 120
    assert round(elbo_kl_weight(OWN_AUDIO_TRAIN.kl_weight, 12_032, 0.1)) == 6
