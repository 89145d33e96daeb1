"""Visible tests for 01_langevin.py.

Run them with `uv run pytest exercises/diffusion/test_01_langevin.py`
(add `--exercise langevin_step` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import pytest

from course import data
from grader import checks


def single_gaussian(mean, std):
    return data.GaussianMixture(means=mean[None], stds=jnp.array([std]), weights=jnp.ones(1))


@pytest.mark.exercise("mixture_score")
def test_score_of_one_gaussian(submission, getkey):
    mean, x = jax.random.normal(getkey(), (2, 2))
    got = jax.jit(lambda mean, x: submission.mixture_score(single_gaussian(mean, 0.5), x))(mean, x)
    expected = jax.jit(lambda mean, x: -(x - mean) / 0.5**2)(mean, x)
    checks.assert_close(got, expected, call="mixture_score(one Gaussian, x)", rtol=1e-4)


@pytest.mark.exercise("mixture_score")
def test_score_matches_finite_differences(submission, getkey):
    mixture = data.gaussian_mixture_2d()
    x = jax.random.normal(getkey(), (2,))
    step = 1e-2
    central_difference = jax.vmap(lambda e: (mixture.log_prob(x + step * e) - mixture.log_prob(x - step * e)) / (2 * step))
    finite_differences = jax.jit(central_difference)(jnp.eye(2))
    got = jax.jit(submission.mixture_score)(mixture, x)
    checks.assert_close(got, finite_differences, call="mixture_score(mixture, x)", rtol=1e-2, atol=1e-2)


@pytest.mark.exercise("langevin_step")
def test_langevin_step_follows_the_update_rule(submission, getkey):
    x, key = jax.random.normal(getkey(), (2,)), getkey()
    score_fn = lambda y: -y
    expected = x + 0.1 * score_fn(x) + jnp.sqrt(0.2) * jax.random.normal(key, (2,))
    got = submission.langevin_step(score_fn, x, key, 0.1)
    checks.assert_close(got, expected, call="langevin_step(score_fn, x, key, 0.1)", rtol=1e-5)


@pytest.mark.exercise("langevin_sampler")
def test_sampler_equals_a_python_loop(submission, getkey):
    x0, key = jax.random.normal(getkey(), (2,)), getkey()
    score_fn = lambda y: -y
    x, expected = x0, []
    for step_key in jax.random.split(key, 5):
        x = submission.langevin_step(score_fn, x, step_key, 0.05)
        expected.append(x)
    got = submission.langevin_sampler(score_fn, x0, key, 0.05, 5)
    checks.assert_close(got, jnp.stack(expected), call="langevin_sampler(score_fn, x0, key, 0.05, 5)")


@pytest.mark.exercise("langevin_sampler")
def test_sampler_reaches_a_standard_normal(submission, getkey):
    run = jax.jit(jax.vmap(lambda k: submission.langevin_sampler(lambda y: -y, jnp.full(2, 3.0), k, 0.05, 300)))
    samples = run(jax.random.split(getkey(), 2000))[:, -1]
    checks.assert_close(samples.mean(0), jnp.zeros(2), call="mean of 2000 final samples", atol=0.1)
    checks.assert_close(samples.std(0), jnp.ones(2), call="std of 2000 final samples", atol=0.1)
