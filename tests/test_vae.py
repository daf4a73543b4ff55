import pytest
import torch

from sda_lab.vae import ConvVAE, VAEConfig, summary


def test_parameter_count_at_construction():
    model = ConvVAE()
    # every term: see notebook 02 for the breakdown
    assert sum(p.numel() for p in model.parameters()) == 3_148_545
    opt = torch.optim.AdamW(model.parameters())
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == 3_148_545


def test_parameter_count_follows_shape():
    # 200 frames pad to 208 -> 13 bottleneck frames: 256*8*13 = 26624 flatten
    m = ConvVAE(n_frames=200)
    assert m.config.flatten_dim == 26_624
    assert m.get_num_params() == 3_148_545 + 3 * 64 * (26_624 - 12_288) + (26_624 - 12_288)


def test_seed_task2_verify_script():
    model = ConvVAE(latent_dim=64, dropout=0.2)
    x = torch.randn(4, 1, 128, 94)
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape
    from sda_lab.losses import compute_kl_divergence, get_kl_weight, vae_loss
    total, recon_loss, kl_loss = vae_loss(recon, x, mu, logvar, kl_weight=0.5)
    assert all(torch.isfinite(v) for v in (total, recon_loss, kl_loss))
    assert get_kl_weight(0, 100) == 0.0
    assert get_kl_weight(15, 100, warmup_fraction=0.3) == 0.5
    assert get_kl_weight(50, 100) == 1.0
    assert isinstance(compute_kl_divergence(mu, logvar), float)
    samples = model.sample(2, torch.device("cpu"))
    assert samples.shape == (2, 1, 128, 94)


@pytest.mark.parametrize("frames", range(81, 97))
def test_shape_round_trip_for_every_accepted_length(frames):
    model = ConvVAE().eval()
    x = torch.rand(2, 1, 128, frames)
    with torch.no_grad():
        recon, mu, logvar = model(x)
    assert recon.shape == x.shape
    assert mu.shape == logvar.shape == (2, 64)
    assert 0 < float(recon.min()) and float(recon.max()) < 1


def test_eval_mode_is_deterministic():
    model = ConvVAE().eval()
    x = torch.rand(3, 1, 128, 94)
    mu1, lv1 = model.encode(x)
    mu2, lv2 = model.encode(x)
    assert torch.equal(mu1, mu2) and torch.equal(lv1, lv2)
    assert torch.equal(model.decode(mu1), model.decode(mu1))
    # and train mode is not (dropout)
    model.train()
    assert not torch.equal(model.encode(x)[0], model.encode(x)[0])


def test_gradients_reach_every_parameter():
    model = ConvVAE()
    x = torch.rand(4, 1, 128, 94)
    recon, mu, logvar = model(x)
    (recon.mean() + mu.pow(2).mean() + logvar.exp().mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_sample_restores_mode_and_uses_generator():
    model = ConvVAE().train()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = model.sample(2, generator=g1), model.sample(2, generator=g2)
    assert model.training
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="at least 1"):
        model.sample(0)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.rand(1, 1, 128, 200), r"built for 94 frames \(padded to 96\), got 200 frames.*"
                                      r"ConvVAE\(n_frames=200\)"),
        (torch.rand(1, 1, 128, 80), r"accepts 81..96 frames"),
        (torch.rand(128, 94), r"shape \(batch, 1, 128, frames\)"),
        (torch.rand(1, 2, 128, 94), r"shape \(batch, 1, 128, frames\)"),
        (torch.rand(1, 1, 64, 94), r"built for 128 mel bands, got 64"),
        (torch.rand(1, 1, 128, 94, dtype=torch.float64), r"float32, got torch.float64"),
        (torch.full((1, 1, 128, 94), float("nan")), r"non-finite"),
    ],
)
def test_bad_inputs_get_clear_errors(x, match):
    with pytest.raises(ValueError, match=match):
        ConvVAE()(x)


def test_bad_latents_and_configs():
    model = ConvVAE()
    with pytest.raises(ValueError, match=r"latent must have shape \(batch, 64\), got \(2, 32\)"):
        model.decode(torch.zeros(2, 32))
    with pytest.raises(ValueError, match="non-finite"):
        model.decode(torch.full((1, 64), float("inf")))
    with pytest.raises(ValueError, match="cannot produce 120"):
        model.decode(torch.zeros(1, 64), target_shape=(1, 1, 128, 120))
    with pytest.raises(ValueError, match="n_mels must be a multiple of 16"):
        VAEConfig(n_mels=100)
    with pytest.raises(ValueError, match="dropout"):
        VAEConfig(dropout=1.5)


def test_summary_lists_layers_and_total():
    stats = summary(ConvVAE())
    assert stats.total_params == 3_148_545
    assert "fc_mu" in str(stats) and "[1, 256, 8, 6]" in str(stats)
