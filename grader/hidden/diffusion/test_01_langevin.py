"""Hidden tests for 01_langevin.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from course import data
from grader import checks
from grader.inputs import normals

# One compiled program builds (and normalises) every mixture, instead of one per op and shape.
_gaussian_mixture = jax.jit(data.GaussianMixture)


def random_mixture(rng, num_components=3):
    """A mixture with random parameters, drawn with NumPy (which compiles nothing)."""
    return _gaussian_mixture(
        means=(2.0 * rng.normal(size=(num_components, 2))).astype(np.float32),
        stds=rng.uniform(0.3, 1.0, size=num_components).astype(np.float32),
        weights=rng.uniform(0.2, 1.0, size=num_components).astype(np.float32),
    )



@pytest.mark.exercise("mixture_score")
@pytest.mark.points(2)
def test_mixture_score_matches_reference(submission, reference, rng):
    mixture = random_mixture(rng)
    points = 2.0 * normals(rng, 16, 2)
    got = submission.evaluate(lambda: jax.jit(jax.vmap(submission.mixture_score, in_axes=(None, 0)))(mixture, points))
    expected = jax.jit(jax.vmap(reference.mixture_score, in_axes=(None, 0)))(mixture, points)
    checks.assert_close(got, expected, call="vmap(mixture_score) on 16 random points", rtol=1e-4)


@pytest.mark.exercise("mixture_score")
@pytest.mark.points(1)
def test_mixture_score_under_jit(submission, reference, rng):
    mixture, x = random_mixture(rng), normals(rng, 2)
    got = submission.evaluate(lambda: checks.jitted(submission.mixture_score, mixture, x, call="jit(mixture_score)"))
    expected = jax.jit(reference.mixture_score)(mixture, x)
    checks.assert_close(got, expected, call="jit(mixture_score)", rtol=1e-4)


@pytest.mark.exercise("langevin_step")
@pytest.mark.points(2)
def test_langevin_step_matches_reference(submission, reference, rng, getkey):
    mixture = random_mixture(rng)
    score_fn = lambda x: reference.mixture_score(mixture, x)
    x, key = normals(rng, 2), getkey()
    step_size = float(rng.uniform(0.01, 0.2))
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        jax.jit(submission.langevin_step, static_argnums=0), score_fn, x, key, step_size, call="langevin_step"))
    expected = jax.jit(reference.langevin_step, static_argnums=0)(score_fn, x, key, step_size)
    checks.assert_close(got, expected, call=f"langevin_step(score_fn, x, key, {step_size:.3f})", rtol=1e-5)


@pytest.mark.exercise("langevin_step")
@pytest.mark.points(1)
def test_langevin_step_uses_the_key(submission, getkey):
    x = jax.device_put(np.zeros(2, np.float32))
    first = submission.langevin_step(lambda y: -y, x, getkey(), 0.1)
    second = submission.langevin_step(lambda y: -y, x, getkey(), 0.1)
    checks.assert_different(first, second, call="langevin_step",
                            why="two different keys gave the same step; the noise must come from `key`.")


@pytest.mark.exercise("langevin_sampler")
@pytest.mark.points(2)
def test_langevin_sampler_matches_reference(submission, reference, rng, getkey):
    mixture = random_mixture(rng)
    score_fn = lambda x: reference.mixture_score(mixture, x)
    x0, key = normals(rng, 2), getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        jax.jit(submission.langevin_sampler, static_argnums=(0, 4)), score_fn, x0, key, 0.02, 50,
        call="langevin_sampler"))
    expected = jax.jit(reference.langevin_sampler, static_argnums=(0, 4))(score_fn, x0, key, 0.02, 50)
    checks.assert_close(got, expected, call="langevin_sampler(score_fn, x0, key, 0.02, 50)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("langevin_sampler")
@pytest.mark.points(2)
def test_langevin_sampler_is_one_scan(submission, getkey):
    keys = getkey(), getkey(), getkey()

    def jaxpr_traced_once():
        sampler = lambda x0, key: submission.langevin_sampler(lambda y: -y, x0, key, 0.1, 100)
        jaxpr = str(jax.make_jaxpr(sampler)(np.zeros(2, np.float32), keys[0]))
        counted = jax.jit(checks.assert_max_traces(sampler, n=1))
        counted(np.zeros(2, np.float32), keys[1])
        counted(np.ones(2, np.float32), keys[2])
        return jaxpr

    jaxpr = submission.evaluate(jaxpr_traced_once)
    if "scan" not in jaxpr:
        checks.fail("langevin_sampler does not use jax.lax.scan (no scan in its jaxpr).")
    if jaxpr.count("random_bits") > 2:
        checks.fail("langevin_sampler unrolls its loop: use jax.lax.scan over the keys, not a Python for loop.")
