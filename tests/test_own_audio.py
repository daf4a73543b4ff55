"""A folder of clips to a model: train_on_clips, ClipsRun, augmentation_effect (tiny model)."""

from dataclasses import replace

import pytest
import torch

import sda_lab.training.own_audio
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig
from sda_lab.training.own_audio import augmentation_effect, clips_to_mels, train_on_clips
from sda_lab.training.recipes import OWN_AUDIO_RECIPE

SPEC = SpectrogramConfig(n_mels=32, scale="db")


@pytest.fixture(scope="module")
def clips():
    from sda_lab.data import AudioClips, make_default_dataset

    base = make_default_dataset(2)  # 10 clips
    files = [f"f{i // 3}.wav" for i in range(10)]  # 4 files of 3, 3, 3, 1 clips
    return AudioClips(base.waveforms, base.labels, base.sample_rate, files=files)


def tiny_model():
    model, _ = OWN_AUDIO_RECIPE.configs()
    return replace(model, latent_dim=4, channels=(4, 8), latent="vector")


def test_train_on_clips_splits_by_file_and_reconstructs(clips):
    _, cfg = OWN_AUDIO_RECIPE.configs(epochs=None, max_steps=2, batch_size=4, device="cpu")
    spec = AudioSpectrogram(SPEC)
    run = train_on_clips(clips, tiny_model(), cfg, val_fraction=0.25, seed=5, spectrogram=spec,
                         progress=False)
    assert len(run.val_files) == 1 and run.train_config.seed == 5
    train_files = {clips.files[i] for i in run.train_idx}
    assert train_files.isdisjoint(run.val_files) and train_files | set(run.val_files) == set(
        clips.files)
    assert run.history.n_val == len(run.val_idx) and run.val_mels.shape[0] == len(run.val_idx)
    assert run.model_config.n_mels == 32 and run.model_config.n_frames == run.mels.shape[-1]
    recon = run.reconstruct(run.val_idx)
    assert recon.shape == run.val_mels.shape and recon.device.type == "cpu"
    v = run.verdict()
    assert v["fired"] == (run.history.alarm is not None) and v["kind"] == run.history.alarm_kind


def test_a_split_leaving_one_training_clip_is_refused_before_any_mel(clips, monkeypatch):
    monkeypatch.setattr(sda_lab.training.own_audio, "clips_to_mels",
                        lambda *a, **k: pytest.fail("mels were computed"))
    held = ["f0.wav", "f1.wav", "f2.wav"]  # leaves f3.wav: one clip
    with pytest.raises(ValueError, match=r"only 1 training clip after holding out 3 files"):
        train_on_clips(clips, tiny_model(), val_files=held, progress=False)


def test_augmentation_effect_pairs_seeds(clips, monkeypatch):
    monkeypatch.setattr(sda_lab.training.own_audio, "OWN_AUDIO_RECIPE",
                        replace(OWN_AUDIO_RECIPE, spectrogram=SPEC, model=tiny_model()))
    df = augmentation_effect(clips, seeds=(0,), max_steps=1, val_fraction=0.25, batch_size=4,
                             device="cpu")
    assert list(df["augment"]) == ["off", "on"] and df["val_files"].tolist() == [1, 1]
    assert df["val_baseline"].nunique() == 1  # same seed, same split in both arms
    assert set(df["verdict"]) <= {"at_average", "collapse", "no_generalisation"}


def test_clips_to_mels_batches():
    spec = AudioSpectrogram(SPEC)
    waves = torch.rand(5, 1, 48_000) * 0.1
    torch.testing.assert_close(clips_to_mels(spec, waves, batch=2), spec.waveform_to_mel(waves))
