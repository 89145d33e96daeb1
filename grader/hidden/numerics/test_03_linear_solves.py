"""Hidden tests for 03_linear_solves.py: the student's functions against the reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def diffusion_2d(u):
    """(-Laplacian + 20) u on a k x k grid with zero boundary values, u flattened: matrix-free, SPD."""
    k = int(round(u.shape[0] ** 0.5))
    grid = jnp.pad(u.reshape(k, k), 1)
    laplacian = grid[:-2, 1:-1] + grid[2:, 1:-1] + grid[1:-1, :-2] + grid[1:-1, 2:] - 4 * grid[1:-1, 1:-1]
    return (-laplacian * (k + 1) ** 2 + 20.0 * grid[1:-1, 1:-1]).reshape(-1)


@pytest.mark.exercise("conjugate_gradient")
@pytest.mark.points(3)
def test_cg_matches_reference_on_a_2d_stencil(submission, reference, rng):
    b = normals(rng, 100)
    solve = lambda cg: jax.jit(lambda b: cg(diffusion_2d, b, 1e-5, 400))(b)
    got = submission.evaluate(solve, submission.conjugate_gradient)
    checks.assert_finite(got, call="conjugate_gradient(2-D stencil, b (100,))")
    checks.assert_close(got, solve(reference.conjugate_gradient), call="conjugate_gradient(2-D stencil, b (100,))",
                        rtol=1e-3, atol=1e-6)


@pytest.mark.exercise("conjugate_gradient")
@pytest.mark.points(1)
def test_cg_stops_at_max_steps_and_at_rtol(submission, reference, rng):
    m = normals(rng, 10, 10)
    a = (m @ m.T / 10 + 0.5 * np.eye(10)).astype(np.float32)
    b = normals(rng, 10)
    for rtol, max_steps in ((1e-6, 3), (0.3, 100)):
        solve = lambda cg, rtol=rtol, max_steps=max_steps: jax.jit(lambda b: cg(lambda v: a @ v, b, rtol, max_steps))(b)
        checks.assert_close(submission.evaluate(solve, submission.conjugate_gradient),
                            solve(reference.conjugate_gradient),
                            call=f"conjugate_gradient(A (10, 10), b, rtol={rtol}, max_steps={max_steps})",
                            rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("conjugate_gradient")
@pytest.mark.points(1)
def test_cg_under_vmap(submission, reference, rng):
    bs = normals(rng, 4, 49)
    solve = lambda cg: jax.jit(jax.vmap(lambda b: cg(diffusion_2d, b, 1e-5, 200)))(bs)
    checks.assert_close(submission.evaluate(solve, submission.conjugate_gradient), solve(reference.conjugate_gradient),
                        call="vmap(conjugate_gradient) over 4 right-hand sides", rtol=1e-3, atol=1e-6)


def energy(x):
    pairs = x[:, None] - x[None, :]
    return jnp.sum(jnp.exp(-(pairs**2))) + jnp.sum(x**4) / 4


@pytest.mark.exercise("hvp")
@pytest.mark.points(2)
def test_hvp_matches_reference(submission, reference, rng):
    x, v = normals(rng, 7), normals(rng, 7)
    got = submission.evaluate(lambda: checks.jitted(submission.hvp, energy, x, v, call="jit(hvp)", static_argnums=(0,)))
    checks.assert_close(got, jax.jit(reference.hvp, static_argnums=0)(energy, x, v), call="hvp(energy, x (7,), v (7,))",
                        rtol=1e-4, atol=1e-5)
    checks.assert_close(got, jax.jit(jax.hessian(energy))(x) @ v, call="hvp(energy, x, v) vs hessian @ v",
                        rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("hvp")
@pytest.mark.points(1)
def test_hvp_is_matrix_free_in_400_dimensions(submission, reference, rng):
    x, v = normals(rng, 400), normals(rng, 400)
    f = lambda x: jnp.sum(jnp.sin(x) * jnp.roll(x, 1)) + jnp.sum(x**2) ** 2 / 400
    jaxpr = submission.evaluate(lambda: str(jax.make_jaxpr(lambda x, v: submission.hvp(f, x, v))(x, v)))
    if "[400,400]" in jaxpr:
        checks.fail("hvp builds a 400 x 400 array: compute the product without the Hessian.")
    got = submission.evaluate(lambda: jax.jit(lambda x, v: submission.hvp(f, x, v))(x, v))
    expected = jax.jit(lambda x, v: reference.hvp(f, x, v))(x, v)
    checks.assert_close(got, expected, call="hvp(f, x (400,), v (400,))", rtol=1e-4, atol=1e-4)
