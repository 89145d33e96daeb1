"""Visible tests for 02_score_matching.py.

Run them with `uv run pytest exercises/diffusion/test_02_score_matching.py`
(add `--exercise sliced_score_matching_loss` to check a single exercise).

Each test draws its inputs with NumPy and computes your loss and the expected value in
one `jax.jit`, which is much faster than running them op by op.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def normal_batches(rng, *shapes):
    """Standard normal float32 test inputs, one array per shape."""
    return [normals(rng, *shape) for shape in shapes]


def linear_score(A, b):
    """s(y) = A y + b, whose Jacobian is A everywhere."""
    return lambda y: A @ y + b


def tanh_score(W, b):
    """s(y) = tanh(W y + b), whose Jacobian is diag(1 - s(y)^2) W."""
    return lambda y: jnp.tanh(W @ y + b)


def tanh_implicit_loss(W, b, x):
    """Hyvärinen's loss of `tanh_score(W, b)` on the batch `x`, in closed form."""
    s = jnp.tanh(x @ W.T + b)  # (n, d)
    traces = jnp.sum((1 - s**2) * jnp.diag(W), axis=-1)
    return jnp.mean(traces + 0.5 * jnp.sum(s**2, axis=-1))


@pytest.mark.exercise("implicit_score_matching_loss")
def test_implicit_loss_of_a_linear_score(submission, rng):
    @jax.jit
    def yours_and_expected(A, b, x):
        yours = submission.implicit_score_matching_loss(linear_score(A, b), x)
        return yours, jnp.trace(A) + 0.5 * jnp.mean(jnp.sum((x @ A.T + b) ** 2, axis=-1))

    yours, expected = yours_and_expected(*normal_batches(rng, (3, 3), (3,), (8, 3)))
    checks.assert_close(yours, expected, rtol=1e-5, atol=1e-5,
                        call="implicit_score_matching_loss(y -> A y + b, x of shape (8, 3))")


@pytest.mark.exercise("implicit_score_matching_loss")
def test_implicit_loss_of_a_nonlinear_score(submission, rng):
    @jax.jit
    def yours_and_expected(W, b, x):
        yours = submission.implicit_score_matching_loss(tanh_score(W, b), x)
        return yours, tanh_implicit_loss(W, b, x)

    yours, expected = yours_and_expected(*normal_batches(rng, (2, 2), (2,), (6, 2)))
    checks.assert_close(yours, expected, rtol=1e-5, atol=1e-5,
                        call="implicit_score_matching_loss(y -> tanh(W y + b), x)")


@pytest.mark.exercise("implicit_score_matching_loss")
def test_implicit_loss_is_minimised_by_the_fitted_gaussian_score(submission, rng):
    # Among linear scores A y + b, the loss is smallest at the score of the Gaussian fitted
    # to the batch: A = -C^-1 and b = C^-1 mean(x), with C the covariance of x (divided by n).
    @jax.jit
    def gradient_at_the_gaussian_fit(z):
        x = z @ jnp.array([[1.0, 0.0], [0.6, 0.5]]) + jnp.array([1.0, -2.0])
        (c00, c01), (c10, c11) = jnp.cov(x.T, bias=True)
        precision = jnp.array([[c11, -c01], [-c10, c00]]) / (c00 * c11 - c01 * c10)  # C^-1
        loss = lambda A, b: submission.implicit_score_matching_loss(linear_score(A, b), x)
        return jax.grad(loss, argnums=(0, 1))(-precision, precision @ x.mean(0))

    (z,) = normal_batches(rng, (64, 2))
    checks.assert_close(gradient_at_the_gaussian_fit(z), (np.zeros((2, 2), np.float32), np.zeros(2, np.float32)),
                        atol=1e-4, call="the gradient of the loss w.r.t. (A, b) at the score of "
                                        "the Gaussian fitted to x")


@pytest.mark.exercise("sliced_score_matching_loss")
def test_sliced_loss_follows_the_formula(submission, rng, getkey):
    @jax.jit
    def yours_and_expected(A, b, x, key):
        yours = submission.sliced_score_matching_loss(linear_score(A, b), x, key)
        v = jax.random.normal(key, x.shape)
        vAv = jnp.einsum("ni,ij,nj->n", v, A, v)
        return yours, jnp.mean(vAv + 0.5 * jnp.sum(v * (x @ A.T + b), axis=-1) ** 2)

    yours, expected = yours_and_expected(*normal_batches(rng, (3, 3), (3,), (5, 3)), getkey())
    checks.assert_close(yours, expected, rtol=1e-5, atol=1e-5,
                        call="sliced_score_matching_loss(y -> A y + b, x, key)")


@pytest.mark.exercise("sliced_score_matching_loss")
def test_sliced_loss_averages_to_the_implicit_loss(submission, rng, getkey):
    # On the batch x repeated 4000 times, every copy of x_i gets its own projection, so the
    # sliced loss averages 4000 projections per point (Monte Carlo error about 0.01 here).
    @jax.jit
    def yours_and_expected(W, b, x, key):
        repeated = jnp.tile(x, (4000, 1))  # (32000, 3)
        yours = submission.sliced_score_matching_loss(tanh_score(W, b), repeated, key)
        return yours, tanh_implicit_loss(W, b, x)

    yours, expected = yours_and_expected(*normal_batches(rng, (3, 3), (3,), (8, 3)), getkey())
    checks.assert_close(yours, expected, atol=0.06,
                        call="sliced_score_matching_loss on a batch of 8 points repeated 4000 "
                             "times vs the implicit loss")


@pytest.mark.exercise("denoising_score_matching_loss")
def test_denoising_loss_follows_the_formula(submission, rng, getkey):
    @jax.jit
    def yours_and_expected(W, b, x, key):
        yours = submission.denoising_score_matching_loss(tanh_score(W, b), x, key, 0.3)
        noise = jax.random.normal(key, x.shape)
        residuals = jnp.tanh((x + 0.3 * noise) @ W.T + b) + noise / 0.3  # (n, d)
        return yours, jnp.mean(0.5 * jnp.sum(residuals**2, axis=-1))

    yours, expected = yours_and_expected(*normal_batches(rng, (2, 2), (2,), (7, 2)), getkey())
    checks.assert_close(yours, expected, rtol=1e-5,
                        call="denoising_score_matching_loss(y -> tanh(W y + b), x, key, 0.3)")


@pytest.mark.exercise("denoising_score_matching_loss")
def test_denoising_loss_learns_the_score_of_the_noised_data(submission, rng, getkey):
    # Data N(0, 0.6^2 I) noised with sigma = 0.5 is N(0, 0.61 I), whose score is -y / 0.61.
    # Among scores -c y the loss is quadratic in c and smallest at c = 1 / 0.61: one Newton
    # step from c = 0 lands there.
    @jax.jit
    def best_c(x, key):
        loss = lambda c: submission.denoising_score_matching_loss(lambda y: -c * y, x, key, 0.5)
        return -jax.grad(loss)(0.0) / jax.grad(jax.grad(loss))(0.0)

    x = (0.6 * rng.normal(size=(4096, 2))).astype(np.float32)
    checks.assert_close(best_c(x, getkey()), np.asarray(1 / 0.61, np.float32), rtol=0.05,
                        call="the c that minimises denoising_score_matching_loss(y -> -c y, x, "
                             "key, 0.5)")
