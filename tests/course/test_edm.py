"""The EDM denoiser, its noise-predictor wrapper and the Heun sampler, against Gaussian data,
for which the exact denoiser is known: with `x0 ~ N(0, sigma_data^2)` per pixel,
`E[x0 | x0 + sigma n] = sigma_data^2 / (sigma^2 + sigma_data^2) x`, which is `c_skip x`: the
preconditioned denoiser with a network that outputs zeros."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import samplers
from course.nn.edm import EDMDenoiser, NoisePredictor, network_time
from course.schedules import DDPMSchedule
from pretraining.galaxy_edm import edm_loss

SIGMA_DATA = jnp.linspace(0.05, 1.0, 16).reshape(1, 4, 4)


def zeros(x, t, y):
    return jnp.zeros_like(x)


def test_the_preconditioning_makes_input_and_target_unit_variance():
    denoiser = EDMDenoiser(zeros, SIGMA_DATA)
    x0 = SIGMA_DATA * jax.random.normal(jax.random.key(0), (20_000, 1, 4, 4))
    noise = jax.random.normal(jax.random.key(1), x0.shape)
    for sigma in (0.01, 0.3, 10.0):
        c_skip, c_out, c_in = denoiser.coefficients(sigma)
        x = x0 + sigma * noise
        np.testing.assert_allclose(jnp.std(c_in * x, axis=0), 1.0, atol=0.03)
        np.testing.assert_allclose(jnp.std((x0 - c_skip * x) / c_out, axis=0), 1.0, atol=0.03)


def test_the_noise_predictor_of_the_exact_denoiser_is_the_posterior_mean_noise():
    schedule = DDPMSchedule.cosine(100)
    model = NoisePredictor(EDMDenoiser(zeros, SIGMA_DATA), schedule.alpha_bars)
    x_t = jax.random.normal(jax.random.key(2), (1, 4, 4))
    for t in (0, 40, 99):
        a = schedule.alpha_bars[t]
        expected = jnp.sqrt(1.0 - a) * x_t / (a * SIGMA_DATA**2 + 1.0 - a)  # E[eps | x_t], Gaussian x0
        np.testing.assert_allclose(model(x_t, t), expected, rtol=1e-4)


def test_the_denoiser_passes_the_log_noise_level_and_the_label_to_the_network():
    seen = {}

    def network(x, t, y):
        seen.update(t=t, y=y)
        return jnp.ones_like(x)

    denoiser = EDMDenoiser(network, 0.5)
    x = jnp.full((1, 4, 4), 2.0)
    c_skip, c_out, _ = denoiser.coefficients(0.1)
    np.testing.assert_allclose(denoiser(x, 0.1, 1), c_skip * x + c_out, rtol=1e-6)
    assert seen["y"] == 1
    np.testing.assert_allclose(seen["t"], network_time(0.1))
    assert network_time(1e-3) == pytest.approx(0.0, abs=1e-3) and network_time(1e2) == pytest.approx(1000.0)


def test_the_edm_loss_is_the_weighted_squared_error_of_the_denoiser():
    def network(x, t, y):
        return jnp.sin(3.0 * x) + 0.01 * t

    denoiser = EDMDenoiser(network, SIGMA_DATA)
    x0 = SIGMA_DATA * jax.random.normal(jax.random.key(3), (1, 4, 4))
    noise = jax.random.normal(jax.random.key(4), x0.shape)
    for sigma in (0.02, 0.5, 5.0):
        expected = jnp.mean(denoiser.loss_weight(sigma) * (denoiser(x0 + sigma * noise, sigma) - x0) ** 2)
        np.testing.assert_allclose(edm_loss(denoiser, x0, jnp.asarray(sigma), noise), expected, rtol=1e-3)


def test_karras_sigmas_fall_from_sigma_max_to_sigma_min_then_zero():
    sigmas = samplers.karras_sigmas(10, 0.002, 80.0)
    assert sigmas.shape == (11,) and sigmas[-1] == 0.0
    np.testing.assert_allclose([sigmas[0], sigmas[-2]], [80.0, 0.002], rtol=1e-5)
    assert jnp.all(jnp.diff(sigmas) < 0)
    # evenly spaced in sigma ** (1 / rho)
    np.testing.assert_allclose(jnp.diff(sigmas[:-1] ** (1 / 7)), jnp.diff(sigmas[:2] ** (1 / 7))[0], rtol=1e-4)


def exact_ode_endpoint(x_start, sigma_max):
    """Where the probability-flow ODE of Gaussian data takes `x_start` at `sigma_max`."""
    return x_start * SIGMA_DATA / jnp.sqrt(SIGMA_DATA**2 + sigma_max**2)


def test_the_heun_sampler_is_second_order_and_evaluates_the_network_2n_minus_1_times():
    denoiser = EDMDenoiser(zeros, SIGMA_DATA)
    key, sigma_max = jax.random.key(5), 20.0
    x_start = sigma_max * jax.random.normal(jax.random.split(key, 9)[0], (1, *SIGMA_DATA.shape))[0]
    errors = []
    for n in (8, 16, 32):
        sigmas = samplers.karras_sigmas(n, 1e-4, sigma_max)
        sample = samplers.heun_sample(denoiser, key, 1, SIGMA_DATA.shape, sigmas)[0]
        errors.append(float(jnp.max(jnp.abs(sample - exact_ode_endpoint(x_start, sigma_max)))))
    order = np.polyfit(np.log([8, 16, 32]), np.log(errors), 1)[0]
    assert order < -1.7, f"errors {errors} fall as n^{order:.2f}, not n^-2"

    calls = []
    counting = EDMDenoiser(lambda x, t, y: calls.append(t) or jnp.zeros_like(x), SIGMA_DATA)
    with jax.disable_jit():
        samplers.heun_sample(counting, key, 1, SIGMA_DATA.shape, samplers.karras_sigmas(5, 0.002, 20.0))
    assert len(calls) == samplers.network_evaluations(5) == 9


def test_churn_keeps_the_samples_distributed_as_the_data():
    denoiser = EDMDenoiser(zeros, SIGMA_DATA)
    sigmas = samplers.karras_sigmas(40, 0.002, 20.0)
    key = jax.random.key(6)
    samples = samplers.heun_sample(denoiser, key, 4000, SIGMA_DATA.shape, sigmas, churn=10.0)
    np.testing.assert_allclose(jnp.std(samples, axis=0), SIGMA_DATA, rtol=0.06)
    deterministic = samplers.heun_sample(denoiser, key, 4000, SIGMA_DATA.shape, sigmas)
    assert not jnp.allclose(deterministic, samples), "churn must add fresh noise"
    by_label = EDMDenoiser(lambda x, t, y: jnp.zeros_like(x) + y.astype(x.dtype), SIGMA_DATA)
    labelled = samplers.heun_sample(by_label, key, 3, SIGMA_DATA.shape, sigmas, jnp.asarray([0, 1, 2]))
    unlabelled = samplers.heun_sample(denoiser, key, 3, SIGMA_DATA.shape, sigmas)
    np.testing.assert_allclose(labelled[0], unlabelled[0], rtol=1e-5)  # label 0: the zero network again
    assert not jnp.allclose(labelled[1], unlabelled[1])
