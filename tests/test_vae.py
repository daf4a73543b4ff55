import dataclasses
import io

import pytest
import torch

from sda_lab.model.vae import (ConvDecoder, ConvEncoder, ConvVAE, VAEConfig, encode_dataset,
                               eval_batches, feature_maps, parameter_breakdown, summary)

TINY = VAEConfig(latent_dim=4, dropout=0.0, n_mels=32, n_frames=16, channels=(4, 8))

# a valid value other than the default for every field
NON_DEFAULT = {"latent_dim": 5, "dropout": 0.1, "n_mels": 48, "n_frames": 20,
               "channels": (4, 8, 16), "output_bias_init": -1.0, "latent": "sequence",
               "time_halvings": 1}


def test_every_field_has_a_non_default_case():
    assert set(NON_DEFAULT) == {f.name for f in dataclasses.fields(VAEConfig)}
    for f in dataclasses.fields(VAEConfig):
        assert NON_DEFAULT[f.name] != getattr(VAEConfig(), f.name), f.name


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(VAEConfig)])
def test_config_round_trips_for_every_field(field):
    cfg = dataclasses.replace(TINY, **{field: NON_DEFAULT[field]})
    model = ConvVAE.from_config(cfg)
    assert model.config == cfg
    assert model.config is model.encoder.config is model.decoder.config  # one object
    assert ConvVAE(**dataclasses.asdict(cfg)).config == cfg  # the scalar signature too
    if field == "output_bias_init":
        assert float(model.decoder.deconvs[-1].bias.detach()) == NON_DEFAULT[field]


def test_output_bias_init_reaches_the_config():
    """The bug: the VAE's config was the encoder's, which never received output_bias_init."""
    model = ConvVAE(output_bias_init=-1.0)
    assert model.config.output_bias_init == -1.0
    assert float(model.decoder.deconvs[-1].bias.detach()) == -1.0


def test_saved_state_dict_and_config_give_the_same_model():
    cfg = dataclasses.replace(TINY, output_bias_init=-1.5, latent_dim=3)
    model = ConvVAE(cfg).eval()
    buf = io.BytesIO()
    torch.save({"model_config": dataclasses.asdict(cfg), "model_state": model.state_dict()}, buf)
    buf.seek(0)
    payload = torch.load(buf, weights_only=True)
    back = ConvVAE.from_config(VAEConfig(**payload["model_config"])).eval()
    back.load_state_dict(payload["model_state"])
    assert back.config == cfg
    x = torch.rand(2, 1, 32, 16)
    assert torch.equal(back(x)[1], model(x)[1])


def test_parts_take_one_config_or_its_fields():
    enc, dec = ConvEncoder(TINY), ConvDecoder(TINY)
    assert enc.config is TINY and dec.config is TINY
    assert ConvEncoder(latent_dim=4, n_mels=32, n_frames=16, channels=(4, 8)).config == \
        dataclasses.replace(TINY, dropout=0.2)
    with pytest.raises(TypeError, match="not both"):
        ConvVAE(TINY, latent_dim=8)
    with pytest.raises(TypeError, match=r"unknown VAEConfig field\(s\) \['latent_size'\]"):
        ConvVAE(latent_size=8)
    with pytest.raises(TypeError, match="config must be a VAEConfig, got int"):
        ConvVAE(64)


def test_helpers_work_on_a_config_built_model():
    model = ConvVAE(TINY)
    mels = torch.rand(5, 1, 32, 16)
    mu, logvar = encode_dataset(model, mels, batch_size=2)
    assert mu.shape == logvar.shape == (5, 4)
    rows = parameter_breakdown(model)
    assert sum(r["parameters"] for r in rows) == model.get_num_params()
    assert [m.shape[1] for m in feature_maps(model, mels[:1])] == [4, 8]


def test_eval_batches_is_eval_mode_batch_size_free_and_restores_the_mode():
    torch.manual_seed(0)
    model = ConvVAE(dataclasses.replace(TINY, dropout=0.5)).train()
    mels = torch.rand(5, 1, 32, 16)
    with torch.no_grad():
        model(mels)  # move BatchNorm's running statistics off their initial values
    batches = list(eval_batches(model, mels, batch_size=2, decode=True))
    assert model.training  # restored
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    mu = torch.cat([b[1] for b in batches])  # (5, D)
    recon = torch.cat([b[3] for b in batches])  # (5, 1, 32, 16)
    model.eval()
    with torch.no_grad():
        mu_ref, _ = model.encode(mels)  # one batch: eval mode makes batches independent
        recon_ref = model.decode(mu_ref, mels.shape)
    model.train()
    assert torch.allclose(mu, mu_ref, atol=1e-6) and torch.allclose(recon, recon_ref, atol=1e-6)
    assert not mu.requires_grad and not recon.requires_grad
    assert all(b[3] is None for b in eval_batches(model, mels, batch_size=2))  # encode only
    assert torch.allclose(encode_dataset(model, mels, batch_size=3)[0], mu_ref, atol=1e-6)
    for _ in eval_batches(model, mels, batch_size=2):
        break  # a loop left early still restores the mode (the generator is closed)
    assert model.training


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


def test_reference_plan_task2_verify_script():
    model = ConvVAE(latent_dim=64, dropout=0.2)
    x = torch.randn(4, 1, 128, 94)
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape
    from sda_lab.model.losses import compute_kl_divergence, get_kl_weight, vae_loss
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
        (torch.rand(1, 1, 64, 94), r"input must have 128 mel bands, got 64"),
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


SEQ = VAEConfig(latent_dim=16, dropout=0.0, n_mels=32, n_frames=32, channels=(4, 8),
                latent="sequence", time_halvings=1)


def test_sequence_latent_is_a_sequence_along_time():
    """latent="sequence": latent_dim // latent_frames values per latent frame, one head shared by
    every frame; the decoder's output near the end does not depend on the first latent frame."""
    assert (SEQ.latent_frames, SEQ.latent_channels) == (16, 1)  # 32 frames, halved once
    model = ConvVAE(SEQ).eval()
    x = torch.rand(3, 1, 32, 32)
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (3, 16)
    z = torch.randn(1, 16)
    moved = z.clone()
    moved[0, 0] += 5.0  # channel 0 at latent frame 0 (channel-major flattening)
    a, b = model.decode(z), model.decode(moved)
    changed = (a - b).abs().amax(dim=(0, 1, 2))  # (frames,)
    assert changed[:2].max() > 1e-4  # frame 0 moves the start
    assert changed[8:].max() == 0  # and nothing past the decoder's reach
    x2 = x.clone()
    x2[..., 24:] = torch.rand(3, 1, 32, 8)  # new last quarter: early latent frames unchanged
    assert torch.allclose(model.encode(x2)[0][:, :8], mu[:, :8])


def test_full_size_sequence_model_and_its_errors():
    cfg = VAEConfig(latent="sequence", time_halvings=2, latent_dim=96)
    assert (cfg.latent_frames, cfg.latent_channels, cfg.bottleneck_shape) == (24, 4, (256, 8, 24))
    model = ConvVAE(cfg)
    recon, mu, _ = model(torch.rand(2, 1, 128, 94))
    assert recon.shape == (2, 1, 128, 94) and mu.shape == (2, 96)
    assert model.get_num_params() < ConvVAE().get_num_params() / 3  # no wide linear heads
    with pytest.raises(ValueError, match="multiple of its 24 latent frames.*got latent_dim 64"):
        VAEConfig(latent="sequence", time_halvings=2)
    with pytest.raises(ValueError, match="time_halvings must be in 0..4"):
        VAEConfig(time_halvings=5)
    with pytest.raises(ValueError, match="latent must be one of"):
        VAEConfig(latent="grid")


def test_logvar_is_clamped_in_value_not_in_gradient():
    """A logvar pushed past the clamp still gets the KL's gradient (a plain clamp gave none, and a
    dimension stuck at logvar 20 kept a KL of 2.4e8 nats for the rest of a run)."""
    from sda_lab.model.losses import kl_per_dimension
    from sda_lab.model.vae import LOGVAR_MAX, LOGVAR_MIN

    model = ConvVAE(TINY)
    with torch.no_grad():
        model.encoder.fc_logvar.weight.zero_()
        model.encoder.fc_logvar.bias.copy_(torch.tensor([25.0, -40.0, 0.0, 1.0]))
    mu, logvar = model.encode(torch.rand(2, 1, 32, 16))
    assert logvar[:, 0].eq(LOGVAR_MAX).all() and logvar[:, 1].eq(LOGVAR_MIN).all()
    assert torch.isfinite(torch.exp(logvar)).all()
    kl_per_dimension(mu, logvar).sum().backward()
    grad = model.encoder.fc_logvar.bias.grad
    assert grad[0] > 0 and grad[1] < 0  # the KL pulls both back towards 0
