import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import metrics


@pytest.fixture
def cloud(getkey):
    return jax.random.normal(getkey(), (400, 2))


def test_sliced_wasserstein_of_identical_sets_is_zero(cloud, getkey):
    shuffled = jax.random.permutation(getkey(), cloud)
    assert metrics.sliced_wasserstein(cloud, shuffled, getkey()) < 1e-5


def test_sliced_wasserstein_of_a_shift(cloud, getkey):
    # Shifting by c shifts every projection u.x by u.c, so SW^2 = E[(u.c)^2] = |c|^2 / d.
    shift = jnp.array([0.6, -0.8])
    distance = metrics.sliced_wasserstein(cloud, cloud + shift, getkey(), num_projections=4000)
    np.testing.assert_allclose(distance, 1.0 / math.sqrt(2.0), rtol=0.05)
    farther = metrics.sliced_wasserstein(cloud, cloud + 3.0 * shift, getkey())
    assert farther > 2.5 * distance


def test_sliced_wasserstein_is_symmetric(cloud, getkey):
    other = 1.5 * cloud[:300] + 0.2
    key = getkey()
    np.testing.assert_allclose(
        metrics.sliced_wasserstein(cloud, other, key),
        metrics.sliced_wasserstein(other, cloud, key),
        rtol=1e-6,
    )


def test_sliced_wasserstein_in_1d_is_the_exact_w2(getkey):
    x = jax.random.normal(getkey(), (50, 1))
    y = jax.random.uniform(getkey(), (50, 1))
    expected = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    np.testing.assert_allclose(metrics.sliced_wasserstein(x, y, getkey()), expected, rtol=1e-5)


def test_sliced_wasserstein_with_different_sizes(cloud, getkey):
    key = getkey()
    repeated = jnp.concatenate([cloud, cloud])  # the same empirical measure
    assert metrics.sliced_wasserstein(cloud, repeated, key) < 1e-5
    other = jax.random.normal(getkey(), (400, 2)) + 1.0
    same_size = metrics.sliced_wasserstein(cloud, other, key)
    np.testing.assert_allclose(metrics.sliced_wasserstein(cloud, other[:333], key), same_size, rtol=0.1)


def _numpy_energy_distance(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def mean_distance(a, b):
        return np.mean(np.linalg.norm(a[:, None] - b[None], axis=-1))

    return math.sqrt(2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y))


def test_energy_distance_matches_brute_force(getkey):
    x = jax.random.normal(getkey(), (60, 3))
    y = 0.5 * jax.random.normal(getkey(), (45, 3)) + 0.3
    np.testing.assert_allclose(metrics.energy_distance(x, y), _numpy_energy_distance(x, y), rtol=1e-4)


def test_energy_distance_is_zero_for_same_and_positive_for_different(cloud, getkey):
    assert metrics.energy_distance(cloud, jax.random.permutation(getkey(), cloud)) < 1e-3
    shifted = metrics.energy_distance(cloud, cloud + 1.0)
    assert shifted > 0.5
    np.testing.assert_allclose(metrics.energy_distance(cloud + 1.0, cloud), shifted, rtol=1e-6)


def test_energy_distance_has_finite_gradients(getkey):
    x = jax.random.normal(getkey(), (20, 2))
    y = jax.random.normal(getkey(), (20, 2)) + 1.0
    gradient = jax.grad(metrics.energy_distance)(x, y)
    assert jnp.all(jnp.isfinite(gradient))


def test_roc_auc_counts_pairs_in_order():
    assert metrics.roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert metrics.roc_auc(np.array([1.0]), np.array([2.0])) == 0.0
    # pairs (2 > 1), (2 < 3), (2 = 2) -> (1 + 0 + 0.5) / 3
    assert math.isclose(metrics.roc_auc(np.array([2.0]), np.array([1.0, 3.0, 2.0])), 0.5)


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    y[:5] = y[0]  # ties
    assert math.isclose(metrics.spearman(x, y), spearmanr(x, y).statistic, rel_tol=1e-9)
    assert math.isclose(metrics.spearman(x, -x), -1.0)
