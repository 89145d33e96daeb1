"""Visible tests for 03_linear_solves.py.

Run them with `uv run pytest exercises/numerics/test_03_linear_solves.py`
(add `--exercise hvp` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from grader import checks


def spd_matrix(rng, n):
    m = rng.normal(size=(n, n))
    return (m @ m.T / n + np.eye(n)).astype(np.float32)


def stencil(u):
    """A matrix-free SPD operator: (-d^2/dx^2 + 50) u on a grid of spacing 1 / (n + 1)."""
    h = 1.0 / (u.shape[0] + 1)
    padded = jnp.pad(u, 1)
    return (2 * u - padded[:-2] - padded[2:]) / h**2 + 50.0 * u


def no_square_intermediates(fn, *args, n: int, name: str) -> None:
    jaxpr = str(jax.make_jaxpr(fn)(*args))
    if f"[{n},{n}]" in jaxpr:
        checks.fail(f"{name} builds an {n} x {n} array: it must stay matrix-free.")


@pytest.mark.exercise("conjugate_gradient")
def test_cg_solves_a_dense_spd_system(submission, rng):
    a, b = spd_matrix(rng, 12), rng.normal(size=(12,)).astype(np.float32)
    got = jax.jit(submission.conjugate_gradient, static_argnums=(0, 3))(lambda v: a @ v, b, 1e-6, 100)
    checks.assert_close(got, np.linalg.solve(a.astype(np.float64), b).astype(np.float32),
                        call="conjugate_gradient(A (12, 12) SPD, b)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("conjugate_gradient")
def test_cg_iterates_like_numpy(submission, rng):
    max_steps = 2  # the first step, and the recurrence of the second
    a, b = spd_matrix(rng, 8).astype(np.float64), rng.normal(size=(8,))
    x, r = np.zeros(8), b.copy()
    p = r.copy()
    for _ in range(max_steps):  # the textbook iteration, in NumPy
        alpha = (r @ r) / (p @ a @ p)
        x, r_new = x + alpha * p, r - alpha * a @ p
        p, r = r_new + (r_new @ r_new) / (r @ r) * p, r_new
    a32 = a.astype(np.float32)
    got = checks.jitted(lambda b: submission.conjugate_gradient(lambda v: a32 @ v, b, 1e-6, max_steps),
                        b.astype(np.float32), call="jit(conjugate_gradient)")
    checks.assert_close(got, x.astype(np.float32), call=f"conjugate_gradient(A, b, max_steps={max_steps})",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("conjugate_gradient")
def test_cg_matches_lineax_matrix_free(submission, rng):
    b = rng.normal(size=(64,)).astype(np.float32)
    got = checks.jitted(lambda b: submission.conjugate_gradient(stencil, b, 1e-5, 500), b,
                        call="jit(conjugate_gradient)")
    operator = lx.FunctionLinearOperator(stencil, jax.ShapeDtypeStruct((64,), np.float32),
                                         tags=lx.positive_semidefinite_tag)
    expected = jax.jit(lambda b: lx.linear_solve(operator, b, lx.CG(rtol=1e-5, atol=1e-5, max_steps=500)).value)(b)
    checks.assert_close(got, expected, call="conjugate_gradient(a stencil, b (64,)) vs lineax.CG",
                        rtol=1e-3, atol=1e-5)


@pytest.mark.exercise("conjugate_gradient")
def test_cg_is_a_matrix_free_while_loop(submission):
    b = np.ones(300, np.float32)
    solve = lambda b: submission.conjugate_gradient(stencil, b, 1e-5, 50)
    if "while" not in str(jax.make_jaxpr(solve)(b)):
        checks.fail("conjugate_gradient does not use jax.lax.while_loop (none in its jaxpr).")
    no_square_intermediates(solve, b, n=300, name="conjugate_gradient")


def coupled(x):
    """A non-quadratic scalar function with a dense Hessian."""
    return jnp.sum(jnp.log(jnp.cosh(x))) + 0.25 * jnp.sum(x) ** 2 * jnp.sum(x**2) + jnp.sin(x[0] * x[-1])


@pytest.mark.exercise("hvp")
def test_hvp_equals_the_hessian_times_v(submission, rng):
    x, v = rng.normal(size=(6,)).astype(np.float32), rng.normal(size=(6,)).astype(np.float32)
    got = checks.jitted(submission.hvp, coupled, x, v, call="jit(hvp)", static_argnums=(0,))
    expected = jax.jit(jax.hessian(coupled))(x) @ v
    checks.assert_close(got, expected, call="hvp(f, x (6,), v (6,))", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("hvp")
def test_hvp_never_builds_the_hessian(submission, rng):
    x, v = rng.normal(size=(500,)).astype(np.float32), rng.normal(size=(500,)).astype(np.float32)
    no_square_intermediates(lambda x, v: submission.hvp(coupled, x, v), x, v, n=500, name="hvp")
    quadratic = lambda x: 0.5 * jnp.sum(x * stencil(x))  # its Hessian is the stencil operator
    got = jax.jit(lambda x, v: submission.hvp(quadratic, x, v))(x, v)
    checks.assert_close(got, stencil(v), call="hvp(0.5 x . A x, x, v) = A v for a stencil A (n = 500)",
                        rtol=1e-4, atol=1.0)  # entries of size ~1e5
