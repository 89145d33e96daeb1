"""Visible tests for 01_langevin.py.

Run them with `uv run pytest exercises/diffusion/test_01_langevin.py`
(add `--exercise langevin_step` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import data
from grader import checks


def single_gaussian(mean, std):
    return data.GaussianMixture(means=mean[None], stds=jnp.array([std]), weights=jnp.ones(1))


@pytest.mark.exercise("mixture_score")
def test_score_of_one_gaussian(submission, rng):
    mean, x = rng.normal(size=(2, 2)).astype(np.float32)
    got = jax.jit(lambda mean, x: submission.mixture_score(single_gaussian(mean, 0.5), x))(mean, x)
    expected = -(x - mean) / np.float32(0.5**2)
    checks.assert_close(got, expected, call="mixture_score(one Gaussian, x)", rtol=1e-4)


@pytest.mark.exercise("mixture_score")
def test_score_matches_finite_differences(submission, rng):
    x = rng.normal(size=(2,)).astype(np.float32)
    step = 1e-2

    @jax.jit
    def yours_and_finite_differences(x):
        mixture = data.gaussian_mixture_2d()
        log_prob = mixture.log_prob
        central_difference = lambda e: (log_prob(x + step * e) - log_prob(x - step * e)) / (2 * step)
        return submission.mixture_score(mixture, x), jax.vmap(central_difference)(jnp.eye(2))

    got, finite_differences = yours_and_finite_differences(x)
    checks.assert_close(got, finite_differences, call="mixture_score(mixture, x)", rtol=1e-2, atol=1e-2)


@pytest.mark.exercise("langevin_step")
def test_langevin_step_follows_the_update_rule(submission, rng, getkey):
    x, key = jax.device_put(rng.normal(size=(2,)).astype(np.float32)), getkey()
    score_fn = lambda y: -y
    got = submission.langevin_step(score_fn, x, key, 0.1)
    # The noise as langevin_step draws it (the same small program, compiled once), the rest in NumPy.
    noise = np.asarray(jax.random.normal(key, (2,)))
    x = np.asarray(x)
    expected = x + np.float32(0.1) * score_fn(x) + np.sqrt(np.float32(0.2)) * noise
    checks.assert_close(got, expected, call="langevin_step(score_fn, x, key, 0.1)", rtol=1e-5)


@pytest.mark.exercise("langevin_sampler")
def test_sampler_equals_a_python_loop(submission, rng, getkey):
    x0, key = jax.device_put(rng.normal(size=(2,)).astype(np.float32)), getkey()
    score_fn = lambda y: -y

    @jax.jit  # one compiled step (step k uses key k of the split), not five
    def step(x, key, k):
        return submission.langevin_step(score_fn, x, jax.random.split(key, 5)[k], 0.05)

    x, expected = x0, []
    for k in range(5):
        x = step(x, key, k)
        expected.append(np.asarray(x))
    got = submission.langevin_sampler(score_fn, x0, key, 0.05, 5)
    checks.assert_close(got, np.stack(expected), call="langevin_sampler(score_fn, x0, key, 0.05, 5)")


@pytest.mark.exercise("langevin_sampler")
def test_sampler_reaches_a_standard_normal(submission, getkey):
    @jax.jit
    def mean_and_std_of_final_samples(key):
        run = jax.vmap(lambda k: submission.langevin_sampler(lambda y: -y, jnp.full(2, 3.0), k, 0.05, 300))
        samples = run(jax.random.split(key, 2000))[:, -1]
        return samples.mean(0), samples.std(0)

    mean, std = mean_and_std_of_final_samples(getkey())
    checks.assert_close(mean, np.zeros(2, np.float32), call="mean of 2000 final samples", atol=0.1)
    checks.assert_close(std, np.ones(2, np.float32), call="std of 2000 final samples", atol=0.1)
