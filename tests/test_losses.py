import pytest
import torch

from sda_lab.model.losses import (active_units, compute_kl_divergence, cyclical_kl_weight,
                                  get_kl_weight, kl_per_dimension,
                                  spectral_convergence_loss, vae_loss)


def test_vae_loss_matches_the_seed_definition():
    g = torch.Generator().manual_seed(0)
    recon, target = torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 1, 8, 8, generator=g)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    total, rl, kl = vae_loss(recon, target, mu, logvar, kl_weight=0.3, free_bits=0.5)
    kl_dim = -0.5 * (1 + logvar - mu**2 - logvar.exp())
    expected_kl = torch.clamp(kl_dim, min=0.5).sum(1).mean()
    expected_rl = ((recon - target) ** 2).mean()
    torch.testing.assert_close(rl, expected_rl)
    torch.testing.assert_close(kl, expected_kl)
    torch.testing.assert_close(total, expected_rl + 0.3 * expected_kl)


def test_kl_is_zero_for_the_prior_and_positive_otherwise():
    z = torch.zeros(5, 3)
    assert compute_kl_divergence(z, z) == 0.0
    assert compute_kl_divergence(torch.ones(5, 3), z) == pytest.approx(1.5)  # 0.5 * mu^2 * 3


def test_free_bits_stop_kl_gradient_below_the_floor():
    mu = torch.tensor([[0.1, 3.0]], requires_grad=True)  # KL 0.005 (under 0.5) and 4.5 (over)
    logvar = torch.zeros(1, 2, requires_grad=True)
    x = torch.zeros(1, 1, 2, 2)
    _, _, kl = vae_loss(x, x, mu, logvar, free_bits=0.5)
    kl.backward()
    assert mu.grad[0, 0] == 0.0
    assert mu.grad[0, 1] == pytest.approx(3.0)
    assert float(kl.detach()) == pytest.approx(0.5 + 4.5)


def test_batch_mode_floors_the_batch_mean_instead():
    # dimension 0: one sample uses 2 nats, the other none -> batch mean 1.0 (over the 0.5 floor)
    mu = torch.tensor([[2.0, 0.0], [0.0, 0.0]], requires_grad=True)
    logvar = torch.zeros(2, 2)
    x = torch.zeros(2, 1, 2, 2)
    _, _, per_sample = vae_loss(x, x, mu, logvar, free_bits=0.5)
    _, _, batch = vae_loss(x, x, mu, logvar, free_bits=0.5, free_bits_mode="batch")
    assert float(per_sample.detach()) == pytest.approx((2.0 + 0.5 + 0.5 + 0.5) / 2)
    assert float(batch.detach()) == pytest.approx(1.0 + 0.5)
    batch.backward()
    assert mu.grad[0, 0] == pytest.approx(1.0)  # d/dmu of mean(0.5 mu^2) over 2 samples


def test_loss_errors():
    x = torch.zeros(2, 1, 2, 2)
    m = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="differ"):
        vae_loss(x, x[:1], m, m)
    with pytest.raises(ValueError, match="free_bits must be >= 0"):
        vae_loss(x, x, m, m, free_bits=-1)
    with pytest.raises(ValueError, match="free_bits_mode"):
        vae_loss(x, x, m, m, free_bits_mode="tokens")
    with pytest.raises(ValueError, match=r"\(batch, latent_dim\)"):
        kl_per_dimension(m, torch.zeros(2, 4))


def test_linear_warmup():
    assert get_kl_weight(0, 100) == 0.0
    assert get_kl_weight(15, 100, warmup_fraction=0.3) == 0.5
    assert get_kl_weight(50, 100) == 1.0
    assert get_kl_weight(29, 100) == pytest.approx(29 / 30)
    assert get_kl_weight(7, 10, warmup_fraction=0.7) == 1.0
    # warm-up shorter than one epoch: no warm-up, and no division by zero
    assert get_kl_weight(0, 3, warmup_fraction=0.3) == 1.0
    assert get_kl_weight(0, 10, warmup_fraction=0.0) == 1.0


@pytest.mark.parametrize("args, match", [
    ((-1, 10), "epoch must be >= 0"), ((0, 0), "total_epochs must be at least 1"),
    ((0, 10, 1.5), r"warmup_fraction must be in \[0, 1\]"),
])
def test_warmup_errors(args, match):
    with pytest.raises(ValueError, match=match):
        get_kl_weight(*args)


def test_cyclical_schedule():
    w = [cyclical_kl_weight(e, 40, n_cycles=4, ratio=0.5) for e in range(40)]
    assert w[0] == w[10] == w[20] == w[30] == 0.0
    assert w[5] == 1.0 and w[9] == 1.0
    assert w[2] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="n_cycles"):
        cyclical_kl_weight(0, 10, n_cycles=0)


def test_active_units():
    g = torch.Generator().manual_seed(0)
    mu = torch.zeros(100, 4)
    mu[:, 0] = torch.randn(100, generator=g)  # variance ~1: active
    mu[:, 1] = 0.01 * torch.randn(100, generator=g)  # variance ~1e-4: inactive
    count, var = active_units(mu)
    assert count == 1 and var.shape == (4,)
    with pytest.raises(ValueError, match="N >= 2"):
        active_units(torch.zeros(1, 4))


def test_gaussian_likelihood_option_is_the_elbo_and_converts_from_the_seed():
    import math

    from sda_lab.model.losses import elbo_kl_weight, vae_loss

    torch.manual_seed(0)
    x, r = torch.rand(3, 1, 8, 6), torch.rand(3, 1, 8, 6)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.1
    sigma = 0.2
    total, rec, kl = vae_loss(r, x, mu, logvar, kl_weight=1.0, free_bits=0.0, gaussian_sigma=sigma)
    # the Gaussian NLL (without its constant), summed over elements, averaged over the batch
    nll = ((r - x) ** 2).sum(dim=(1, 2, 3)).mean() / (2 * sigma**2)
    assert rec.item() == pytest.approx(nll.item(), rel=1e-6)
    assert total.item() == pytest.approx(rec.item() + kl.item(), rel=1e-6)
    # same optimum as the seed's loss with the converted weight: the losses are proportional
    w_seed = 1e-3
    beta = elbo_kl_weight(w_seed, n_elements=8 * 6, gaussian_sigma=sigma)
    seed_total, _, _ = vae_loss(r, x, mu, logvar, kl_weight=w_seed, free_bits=0.0)
    elbo_total, _, _ = vae_loss(r, x, mu, logvar, kl_weight=beta, free_bits=0.0,
                                gaussian_sigma=sigma)
    assert elbo_total.item() == pytest.approx(seed_total.item() * 48 / (2 * sigma**2), rel=1e-5)
    assert math.isclose(elbo_kl_weight(1.0, 12_032, 0.1), 601_600.0)
    with pytest.raises(ValueError, match="gaussian_sigma must be > 0"):
        vae_loss(r, x, mu, logvar, gaussian_sigma=0.0)


def test_the_schedules_by_name_and_over_a_budget():
    from sda_lab.model.losses import kl_weight_at_progress, scheduled_kl_weight

    assert [scheduled_kl_weight("linear", e, 10, 0.5) for e in (0, 1, 5, 9)] == [
        get_kl_weight(e, 10, 0.5) for e in (0, 1, 5, 9)]
    assert scheduled_kl_weight("cyclical", 3, 8, n_cycles=2, cycle_ratio=0.5) == \
        cyclical_kl_weight(3, 8, 2, 0.5)
    assert scheduled_kl_weight("constant", 0, 10) == 1.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        scheduled_kl_weight("sigmoid", 0, 10)
    assert [kl_weight_at_progress("linear", p, 0.5) for p in (-1, 0, 0.25, 0.5, 1, 2)] == [
        0, 0, 0.5, 1, 1, 1]
    assert kl_weight_at_progress("linear", 0.1, 0.0) == 1.0  # no warm-up: never a division by 0
    # cyclical: 2 cycles ramping over half of each; the budget's end is the end of a cycle (1)
    assert [kl_weight_at_progress("cyclical", p, n_cycles=2, cycle_ratio=0.5)
            for p in (0, 0.125, 0.25, 0.5, 1.0)] == [0, 0.5, 1, 0, 1]


def test_spectral_convergence_is_0_when_exact_and_prefers_a_blurred_guess_quieter():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 8, 8, generator=g)
    assert float(spectral_convergence_loss(target, target)) == 0.0
    assert float(spectral_convergence_loss(torch.zeros_like(target), target)) == pytest.approx(1.0)
    # a flat guess at the input's level: the scale that minimises the term is below 1 (quieter)
    blurred = torch.ones_like(target) * target.flatten(1).norm(dim=1).view(-1, 1, 1, 1) / 8
    scales = torch.linspace(0.5, 1.5, 101)
    best = scales[torch.stack([spectral_convergence_loss(k * blurred, target)
                               for k in scales]).argmin()]
    assert best < 0.95
    with pytest.raises(ValueError, match="differ"):
        spectral_convergence_loss(target, target[:2])
