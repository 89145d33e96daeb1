"""Hidden tests for 01_langevin.py: the student's functions against the reference."""

import jax
import jax.numpy as jnp
import pytest

from course import data
from grader import checks


def random_mixture(key, num_components=3):
    means_key, stds_key, weights_key = jax.random.split(key, 3)
    return data.GaussianMixture(
        means=2.0 * jax.random.normal(means_key, (num_components, 2)),
        stds=jax.random.uniform(stds_key, (num_components,), minval=0.3, maxval=1.0),
        weights=jax.random.uniform(weights_key, (num_components,), minval=0.2, maxval=1.0),
    )


@pytest.mark.exercise("mixture_score")
@pytest.mark.points(2)
def test_mixture_score_matches_reference(submission, reference, getkey):
    mixture = random_mixture(getkey())
    points = 2.0 * jax.random.normal(getkey(), (16, 2))
    got = jax.jit(jax.vmap(submission.mixture_score, in_axes=(None, 0)))(mixture, points)
    expected = jax.jit(jax.vmap(reference.mixture_score, in_axes=(None, 0)))(mixture, points)
    checks.assert_close(got, expected, call="vmap(mixture_score) on 16 random points", rtol=1e-4)


@pytest.mark.exercise("mixture_score")
@pytest.mark.points(1)
def test_mixture_score_under_jit(submission, reference, getkey):
    mixture, x = random_mixture(getkey()), jax.random.normal(getkey(), (2,))
    got = checks.jitted(submission.mixture_score, mixture, x, call="jit(mixture_score)")
    checks.assert_close(got, reference.mixture_score(mixture, x), call="jit(mixture_score)", rtol=1e-4)


@pytest.mark.exercise("langevin_step")
@pytest.mark.points(2)
def test_langevin_step_matches_reference(submission, reference, getkey):
    mixture = random_mixture(getkey())
    score_fn = lambda x: reference.mixture_score(mixture, x)
    x, key = jax.random.normal(getkey(), (2,)), getkey()
    step_size = float(jax.random.uniform(getkey(), minval=0.01, maxval=0.2))
    got = checks.assert_no_key_reuse(
        jax.jit(submission.langevin_step, static_argnums=0), score_fn, x, key, step_size, call="langevin_step"
    )
    expected = jax.jit(reference.langevin_step, static_argnums=0)(score_fn, x, key, step_size)
    checks.assert_close(got, expected, call=f"langevin_step(score_fn, x, key, {step_size:.3f})", rtol=1e-5)


@pytest.mark.exercise("langevin_step")
@pytest.mark.points(1)
def test_langevin_step_uses_the_key(submission, getkey):
    x = jnp.zeros(2)
    first = submission.langevin_step(lambda y: -y, x, getkey(), 0.1)
    second = submission.langevin_step(lambda y: -y, x, getkey(), 0.1)
    checks.assert_different(first, second, call="langevin_step",
                            why="two different keys gave the same step; the noise must come from `key`.")


@pytest.mark.exercise("langevin_sampler")
@pytest.mark.points(2)
def test_langevin_sampler_matches_reference(submission, reference, getkey):
    mixture = random_mixture(getkey())
    score_fn = lambda x: reference.mixture_score(mixture, x)
    x0, key = jax.random.normal(getkey(), (2,)), getkey()
    got = checks.assert_no_key_reuse(
        jax.jit(submission.langevin_sampler, static_argnums=(0, 4)), score_fn, x0, key, 0.02, 50,
        call="langevin_sampler",
    )
    expected = jax.jit(reference.langevin_sampler, static_argnums=(0, 4))(score_fn, x0, key, 0.02, 50)
    checks.assert_close(got, expected, call="langevin_sampler(score_fn, x0, key, 0.02, 50)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("langevin_sampler")
@pytest.mark.points(2)
def test_langevin_sampler_is_one_scan(submission, getkey):
    sampler = lambda x0, key: submission.langevin_sampler(lambda y: -y, x0, key, 0.1, 100)
    jaxpr = str(jax.make_jaxpr(sampler)(jnp.zeros(2), getkey()))
    if "scan" not in jaxpr:
        checks.fail("langevin_sampler does not use jax.lax.scan (no scan in its jaxpr).")
    if jaxpr.count("random_bits") > 2:
        checks.fail("langevin_sampler unrolls its loop: use jax.lax.scan over the keys, not a Python for loop.")
    counted = jax.jit(checks.assert_max_traces(sampler, n=1))
    counted(jnp.zeros(2), getkey())
    counted(jnp.ones(2), getkey())
