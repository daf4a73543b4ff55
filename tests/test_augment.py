import pytest
import torch

from sda_lab.augment import AugmentConfig, augment_waveforms


def test_augment_waveforms_keeps_shape_and_full_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.sin(torch.linspace(0, 2000, 4800)).mul(0.9).repeat(6, 1, 1)  # (6, 1, 4800)
    cfg = AugmentConfig(gain_db=12.0, max_shift_s=0.01, speed=0.1)
    y = augment_waveforms(x, cfg, 48_000, g)
    assert y.shape == x.shape and y.abs().max() <= 1.0 + 1e-6
    assert not torch.equal(y, x)
    again = augment_waveforms(x, cfg, 48_000, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)
    assert torch.equal(augment_waveforms(x, AugmentConfig(0, 0, 0), 48_000, g), x)


def test_shift_fills_with_silence_not_wrap_around():
    x = torch.ones(8, 1, 1000)
    y = augment_waveforms(x, AugmentConfig(gain_db=0, max_shift_s=0.01, speed=0), 10_000,
                          torch.Generator().manual_seed(1))
    zeros = (y == 0).sum(dim=2).flatten()  # a shift of k samples leaves |k| zeros
    assert zeros.max() > 0 and zeros.max() <= 100


@pytest.mark.parametrize("kwargs, match", [({"speed": 0.6}, "speed < 0.5"),
                                           ({"gain_db": -1}, "gain_db >= 0")])
def test_bad_augment_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AugmentConfig(**kwargs)
    with pytest.raises(ValueError, match=r"\(batch, 1, samples\)"):
        augment_waveforms(torch.zeros(3, 100), AugmentConfig(), 48_000)
