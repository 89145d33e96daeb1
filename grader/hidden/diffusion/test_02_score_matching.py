"""Hidden tests for 02_score_matching.py: the student's losses against the reference."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import with_numpy_weights

DIM = 3  # not 2, so that an answer hard-wired to 2D fails


@functools.cache
def _score_network_shape():
    return eqx.filter_eval_shape(
        lambda: eqx.nn.MLP(DIM, DIM, width_size=16, depth=2, activation=jax.nn.softplus, key=jax.random.key(0))
    )


def random_score_network(rng):
    """A small smooth MLP R^3 -> R^3 with random weights, standing in for a score model."""
    return with_numpy_weights(_score_network_shape(), rng)


def random_batch(rng, n=12):
    """A float32 batch drawn with NumPy (which compiles nothing, unlike jax.random)."""
    return (1.5 * rng.normal(size=(n, DIM))).astype(np.float32)


def matrix_axes(jaxpr, size):
    """Shapes of the values in `jaxpr` (and its sub-jaxprs) with two or more axes of `size`."""
    found = []
    for eqn in jaxpr.eqns:
        found += [v.aval.shape for v in eqn.outvars if list(v.aval.shape).count(size) >= 2]
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    found += matrix_axes(inner, size)
    return found


# --- implicit score matching ------------------------------------------------------------------


@pytest.mark.exercise("implicit_score_matching_loss")
@pytest.mark.points(2)
def test_implicit_loss_matches_reference(submission, reference, rng):
    model, x = random_score_network(rng), random_batch(rng)
    got = submission.evaluate(lambda: eqx.filter_jit(submission.implicit_score_matching_loss)(model, x))
    expected = eqx.filter_jit(reference.implicit_score_matching_loss)(model, x)
    checks.assert_close(got, expected, call="implicit_score_matching_loss(random MLP, x of shape "
                        f"{x.shape})", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("implicit_score_matching_loss")
@pytest.mark.points(1)
def test_implicit_loss_gradients_match_reference(submission, reference, rng):
    model, x = random_score_network(rng), random_batch(rng)
    got = submission.evaluate(
        lambda: eqx.filter_jit(eqx.filter_grad(submission.implicit_score_matching_loss))(model, x))
    expected = eqx.filter_jit(eqx.filter_grad(reference.implicit_score_matching_loss))(model, x)
    checks.assert_close(got, expected, call="gradient of implicit_score_matching_loss w.r.t. the "
                        "MLP's parameters", rtol=1e-3, atol=1e-5)


# --- sliced score matching --------------------------------------------------------------------


@pytest.mark.exercise("sliced_score_matching_loss")
@pytest.mark.points(2)
def test_sliced_loss_matches_reference(submission, reference, rng, getkey):
    model, x, key = random_score_network(rng), random_batch(rng), getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.sliced_score_matching_loss), model, x, key, call="sliced_score_matching_loss"))
    expected = eqx.filter_jit(reference.sliced_score_matching_loss)(model, x, key)
    checks.assert_close(got, expected, call="sliced_score_matching_loss(random MLP, x, key)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("sliced_score_matching_loss")
@pytest.mark.points(1)
def test_sliced_loss_gradients_match_reference(submission, reference, rng, getkey):
    model, x, key = random_score_network(rng), random_batch(rng), getkey()
    got = submission.evaluate(
        lambda: eqx.filter_jit(eqx.filter_grad(submission.sliced_score_matching_loss))(model, x, key))
    expected = eqx.filter_jit(eqx.filter_grad(reference.sliced_score_matching_loss))(model, x, key)
    checks.assert_close(got, expected, call="gradient of sliced_score_matching_loss w.r.t. the "
                        "MLP's parameters", rtol=1e-3, atol=1e-5)


@pytest.mark.exercise("sliced_score_matching_loss")
@pytest.mark.points(1)
def test_sliced_loss_uses_the_key(submission, rng, getkey):
    model, x, keys = random_score_network(rng), random_batch(rng), (getkey(), getkey())
    loss = lambda key: eqx.filter_jit(submission.sliced_score_matching_loss)(model, x, key)
    checks.assert_different(*submission.evaluate(lambda: [loss(key) for key in keys]),
                            call="sliced_score_matching_loss",
                            why="two different keys gave the same loss; draw the projections "
                                "with jax.random.normal(key, x.shape).")


@pytest.mark.exercise("sliced_score_matching_loss")
@pytest.mark.points(1)
def test_sliced_loss_never_builds_the_jacobian(submission, rng, getkey):
    # In dimension 37 (batch of 5), a full Jacobian shows up as a value with two axes of 37.
    dim = 37
    weights = (rng.normal(size=(dim, dim)) / dim**0.5).astype(np.float32)
    score_fn = lambda y: jnp.tanh(weights @ y)
    x = rng.normal(size=(5, dim)).astype(np.float32)
    key = getkey()
    shapes = submission.evaluate(lambda: matrix_axes(
        jax.make_jaxpr(lambda x, key: submission.sliced_score_matching_loss(score_fn, x, key))(x, key).jaxpr, dim))
    if shapes:
        checks.fail(f"sliced_score_matching_loss builds a {dim} x {dim} matrix (shapes "
                    f"{sorted(set(shapes))}) for {dim}-dimensional data: that is the Jacobian. "
                    "Use jax.jvp(score_fn, (x_i,), (v_i,)) to get J v directly.")


# --- denoising score matching -----------------------------------------------------------------

# A random noise level (a static argument: it chooses the compiled program) shared by the test
# against the reference and the key test, which thus reuses the compiled program.
DENOISING_SIGMA = float(np.random.default_rng(2024).uniform(0.05, 1.0))


@pytest.mark.exercise("denoising_score_matching_loss")
@pytest.mark.points(2)
def test_denoising_loss_matches_reference(submission, reference, rng, getkey):
    model, x, key, sigma = random_score_network(rng), random_batch(rng), getkey(), DENOISING_SIGMA
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.denoising_score_matching_loss), model, x, key, sigma,
        call="denoising_score_matching_loss"))
    expected = eqx.filter_jit(reference.denoising_score_matching_loss)(model, x, key, sigma)
    checks.assert_close(got, expected, rtol=1e-4, atol=1e-5,
                        call=f"denoising_score_matching_loss(random MLP, x, key, {sigma:.3f})")


@pytest.mark.exercise("denoising_score_matching_loss")
@pytest.mark.points(1)
def test_denoising_loss_gradients_match_reference(submission, reference, rng, getkey):
    model, x, key = random_score_network(rng), random_batch(rng), getkey()
    grad = lambda loss: eqx.filter_jit(eqx.filter_grad(loss))(model, x, key, 0.3)
    checks.assert_close(submission.evaluate(lambda: grad(submission.denoising_score_matching_loss)),
                        grad(reference.denoising_score_matching_loss), rtol=1e-3, atol=1e-5,
                        call="gradient of denoising_score_matching_loss w.r.t. the MLP's "
                             "parameters")


@pytest.mark.exercise("denoising_score_matching_loss")
@pytest.mark.points(1)
def test_denoising_loss_uses_the_key(submission, rng, getkey):
    model, x, keys = random_score_network(rng), random_batch(rng), (getkey(), getkey())
    loss = lambda key: eqx.filter_jit(submission.denoising_score_matching_loss)(model, x, key, DENOISING_SIGMA)
    checks.assert_different(*submission.evaluate(lambda: [loss(key) for key in keys]),
                            call="denoising_score_matching_loss",
                            why="two different keys gave the same loss; draw the noise with "
                                "jax.random.normal(key, x.shape).")
