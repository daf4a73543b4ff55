import pytest
import torch

from sda_lab.data.augment import AugmentConfig, augment_mels, augment_waveforms, mixup_waveforms


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


def _mels(b=6, m=32, t=20):
    return torch.rand(b, 1, m, t, generator=torch.Generator().manual_seed(3)) * 0.9 + 0.05


def test_specaugment_masks_the_input_only():
    x = _mels()
    cfg = AugmentConfig(0, 0, 0, freq_mask=8, time_mask=5)
    inputs, target = augment_mels(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(target, x)  # the model must fill the masks in
    zero = inputs == 0
    rows = zero.all(dim=3).sum(dim=(1, 2))  # (B,) fully masked mel rows
    cols = zero.all(dim=2).sum(dim=(1, 2))  # (B,) fully masked frames
    assert rows.max() <= 8 and cols.max() <= 5 and (rows + cols).sum() > 0
    assert torch.equal(inputs[~zero], x[~zero])  # nothing else changes
    # every clip gets its own mask
    assert len({tuple(zero[i, 0].any(dim=1).nonzero().flatten().tolist()) for i in range(6)}) > 1


def test_mel_shift_moves_input_and_target_alike():
    x = _mels()
    inputs, target = augment_mels(x, AugmentConfig(0, 0, 0, mel_shift=3),
                                  torch.Generator().manual_seed(1))
    assert inputs is target
    for i in range(x.shape[0]):
        k = next(k for k in range(-3, 4)
                 if torch.equal(target[i, 0, max(k, 0):32 + min(k, 0)],
                                x[i, 0, max(-k, 0):32 - max(k, 0)]))
        gap = target[i, 0, :k] if k > 0 else target[i, 0, 32 + k:]
        assert gap.numel() == abs(k) * 20 and (gap == 0).all()  # silence, no wrap-around
    assert not torch.equal(target, x)
    assert augment_mels(x, AugmentConfig(0, 0, 0))[0] is x  # nothing asked, nothing done


def test_mixup_mixes_two_clips_of_the_batch():
    a = torch.zeros(4, 1, 10)
    a[:, 0, 0] = torch.tensor([1.0, 2.0, 4.0, 8.0])  # tell the clips apart by sample 0
    y = mixup_waveforms(a, 1.0, torch.Generator().manual_seed(0))
    for i in range(4):
        v = float(y[i, 0, 0])
        parts = [(lam, j) for j in range(4) if j != i
                 for lam in [(v - float(a[j, 0, 0])) / float(a[i, 0, 0] - a[j, 0, 0])]
                 if 0.3 - 1e-6 <= lam <= 0.7 + 1e-6]
        assert parts, (i, v)  # lam * own + (1 - lam) * another clip
    assert torch.equal(mixup_waveforms(a, 0.0), a)
    with pytest.raises(ValueError, match="mixup <= 1"):
        AugmentConfig(mixup=2.0)
