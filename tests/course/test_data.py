import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import data


def _numpy_mixture_log_prob(x, means, stds, weights):
    """Brute-force log density of an isotropic Gaussian mixture, in float64."""
    x, means, stds, weights = (np.asarray(a, dtype=np.float64) for a in (x, means, stds, weights))
    dim = means.shape[1]
    density = 0.0
    for mean, std, weight in zip(means, stds, weights, strict=True):
        normaliser = (2.0 * math.pi * std**2) ** (-dim / 2)
        density += weight * normaliser * math.exp(-np.sum((x - mean) ** 2) / (2.0 * std**2))
    return math.log(density)


def _mixture_moments(mixture):
    weights = np.asarray(mixture.weights, dtype=np.float64)
    means = np.asarray(mixture.means, dtype=np.float64)
    stds = np.asarray(mixture.stds, dtype=np.float64)
    mean = weights @ means
    second_moment = np.einsum("k,ki,kj->ij", weights, means, means) + np.sum(weights * stds**2) * np.eye(means.shape[1])
    return mean, second_moment - np.outer(mean, mean)


@pytest.mark.parametrize("sampler", [data.swiss_roll, data.two_moons])
def test_toy_sets_are_centred_2d_float_arrays(sampler, getkey):
    samples = sampler(getkey(), 50_000)
    assert samples.shape == (50_000, 2)
    assert samples.dtype == jnp.float32
    np.testing.assert_allclose(jnp.mean(samples, axis=0), 0.0, atol=0.03)


def test_swiss_roll_has_unit_scale(getkey):
    stds = jnp.std(data.swiss_roll(getkey(), 100_000), axis=0)
    np.testing.assert_allclose(stds, [0.97, 1.02], atol=0.03)


def test_noiseless_swiss_roll_lies_on_the_roll(getkey):
    scaled = data.swiss_roll(getkey(), 1000, noise=0.0)
    unscaled = np.asarray(scaled, np.float64) * 6.789 + [2.0, 2.0 / (3.0 * math.pi)]
    radius = np.linalg.norm(unscaled, axis=1)
    angle = np.arctan2(unscaled[:, 1], unscaled[:, 0])
    # On the roll the radius equals the (unwrapped) angle t in [1.5 pi, 4.5 pi].
    assert np.all((radius > 1.5 * math.pi - 0.02) & (radius < 4.5 * math.pi + 0.02))
    np.testing.assert_allclose(np.cos(radius), np.cos(angle), atol=0.02)


def test_two_moons_scale_and_arcs(getkey):
    stds = jnp.std(data.two_moons(getkey(), 100_000), axis=0)
    np.testing.assert_allclose(stds, [1.23, 0.70], atol=0.03)
    unscaled = np.asarray(data.two_moons(getkey(), 1000, noise=0.0), np.float64)
    unscaled = unscaled * 0.70505 + [0.5, 0.25]
    on_upper = np.abs(np.linalg.norm(unscaled, axis=1) - 1.0) < 1e-3
    on_lower = np.abs(np.linalg.norm(unscaled - [1.0, 0.5], axis=1) - 1.0) < 1e-3
    assert np.all(on_upper | on_lower)
    assert 0.45 < np.mean(on_upper) < 0.55


def test_samplers_depend_on_the_key_and_jit(getkey):
    key = getkey()
    jitted = jax.jit(data.swiss_roll, static_argnums=1)
    np.testing.assert_allclose(jitted(key, 10), data.swiss_roll(key, 10), rtol=1e-5, atol=1e-6)
    assert not np.allclose(data.swiss_roll(getkey(), 10), data.swiss_roll(getkey(), 10))


def test_mixture_log_prob_matches_brute_force(getkey):
    k_means, k_stds, k_weights, k_points = jax.random.split(getkey(), 4)
    means = jax.random.normal(k_means, (4, 3))
    stds = jax.random.uniform(k_stds, (4,), minval=0.3, maxval=1.5)
    weights = jax.random.uniform(k_weights, (4,), minval=0.1, maxval=1.0)
    mixture = data.GaussianMixture(means, stds, weights)
    points = 2.0 * jax.random.normal(k_points, (20, 3))
    log_probs = jax.vmap(mixture.log_prob)(points)
    expected = [_numpy_mixture_log_prob(p, means, stds, weights / jnp.sum(weights)) for p in points]
    np.testing.assert_allclose(log_probs, expected, rtol=1e-5, atol=1e-5)


def test_mixture_log_prob_is_finite_far_away():
    mixture = data.eight_gaussians()
    far = mixture.log_prob(jnp.array([40.0, -30.0]))
    assert jnp.isfinite(far)
    assert far < -1000.0


@pytest.mark.parametrize("make_mixture", [data.eight_gaussians, data.gaussian_mixture_2d])
def test_mixture_density_integrates_to_one(make_mixture):
    mixture = make_mixture()
    ticks = jnp.linspace(-6.0, 6.0, 481)
    cell_area = (ticks[1] - ticks[0]) ** 2
    grid = jnp.stack(jnp.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
    total = jnp.sum(jnp.exp(jax.vmap(mixture.log_prob)(grid))) * cell_area
    np.testing.assert_allclose(total, 1.0, atol=1e-3)


@pytest.mark.parametrize("make_mixture", [data.eight_gaussians, data.gaussian_mixture_2d])
def test_mixture_samples_have_the_mixture_moments(make_mixture, getkey):
    mixture = make_mixture()
    samples = np.asarray(mixture.sample(getkey(), 200_000), np.float64)
    mean, covariance = _mixture_moments(mixture)
    assert samples.shape == (200_000, 2)
    np.testing.assert_allclose(samples.mean(axis=0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(samples.T), covariance, atol=0.03)


def test_mixture_samples_pick_components_by_weight(getkey):
    mixture = data.gaussian_mixture_2d()
    samples = mixture.sample(getkey(), 100_000)
    # Components are well separated: assign each sample to the nearest mean.
    distances = jnp.linalg.norm(samples[:, None, :] - mixture.means[None], axis=-1)
    nearest = jnp.argmin(distances / mixture.stds, axis=1)
    frequencies = jnp.bincount(nearest, length=3) / samples.shape[0]
    np.testing.assert_allclose(frequencies, mixture.weights, atol=0.02)


def test_mixture_normalises_weights_and_checks_shapes():
    mixture = data.GaussianMixture(jnp.zeros((2, 2)), jnp.ones(2), jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(mixture.weights, [0.25, 0.75])
    equal = data.GaussianMixture(np.array([[0, 0], [1, 1]]), np.array([1, 1]))
    np.testing.assert_allclose(equal.weights, [0.5, 0.5])
    assert equal.means.dtype == jnp.float32
    # A TypeError comes first when the jaxtyping hints are checked at run time.
    with pytest.raises((ValueError, TypeError), match="stds"):
        data.GaussianMixture(jnp.zeros((2, 2)), jnp.ones(3))
    with pytest.raises((ValueError, TypeError), match="means"):
        data.GaussianMixture(jnp.zeros(2), jnp.ones(2))


def test_eight_gaussians_layout():
    mixture = data.eight_gaussians(radius=3.0, std=0.1)
    np.testing.assert_allclose(jnp.linalg.norm(mixture.means, axis=1), 3.0, rtol=1e-6)
    np.testing.assert_allclose(mixture.weights, 1.0 / 8.0)
    np.testing.assert_allclose(mixture.stds, 0.1)
    angles = jnp.sort(jnp.arctan2(mixture.means[:, 1], mixture.means[:, 0]))
    np.testing.assert_allclose(jnp.diff(angles), 2.0 * math.pi / 8.0, rtol=1e-5)


def test_mixture_works_under_jit_and_grad(getkey):
    mixture = data.gaussian_mixture_2d()
    x = jax.random.normal(getkey(), (2,))
    jitted = eqx.filter_jit(mixture.log_prob)
    np.testing.assert_allclose(jitted(x), mixture.log_prob(x), rtol=1e-6)
    assert jnp.all(jnp.isfinite(jax.grad(mixture.log_prob)(x)))
    sample = eqx.filter_jit(mixture.sample)(getkey(), 5)
    assert sample.shape == (5, 2)
