"""Hidden tests for 02_newton_and_implicit.py: the student's functions against the reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def coupled_exponentials(x, theta):
    """exp-coupled nonlinear system with a unique root near 0 for small theta."""
    scale, shift = theta[0], theta[1:]
    return 4.0 * x + scale * jnp.tanh(jnp.roll(x, 1)) + 0.1 * jnp.exp(0.5 * x) - shift


@pytest.mark.exercise("newton_solve")
@pytest.mark.points(2)
def test_newton_solve_matches_reference(submission, reference, rng):
    theta = np.concatenate([[np.float32(rng.uniform(0.5, 1.5))], normals(rng, 4)]).astype(np.float32)
    x0 = normals(rng, 4)
    got = submission.evaluate(lambda: checks.jitted(submission.newton_solve, coupled_exponentials, x0, theta,
                                                    call="jit(newton_solve)", static_argnums=(0,)))
    expected = jax.jit(reference.newton_solve, static_argnums=0)(coupled_exponentials, x0, theta)
    checks.assert_close(got, expected, call="newton_solve(f, x0 (4,), theta (5,))", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("newton_solve")
@pytest.mark.points(1)
def test_newton_solve_respects_max_steps(submission, reference, rng):
    theta = np.concatenate([[np.float32(1.0)], 10 * normals(rng, 3)]).astype(np.float32)
    x0 = 5 * normals(rng, 3)
    solve = lambda solver, max_steps: jax.jit(solver, static_argnums=(0, 4))(
        coupled_exponentials, x0, theta, 1e-6, max_steps)
    for max_steps in (1, 3):
        got = submission.evaluate(solve, submission.newton_solve, max_steps)
        expected = solve(reference.newton_solve, max_steps)
        checks.assert_close(got, expected, call=f"newton_solve(f, x0 far away, theta, max_steps={max_steps})",
                            rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("newton_solve")
@pytest.mark.points(1)
def test_newton_solve_under_vmap(submission, reference, rng):
    thetas = np.concatenate([np.full((6, 1), 0.8, np.float32), normals(rng, 6, 3)], axis=1)
    x0 = np.zeros(3, np.float32)
    run = lambda solve: jax.jit(jax.vmap(lambda th: solve(coupled_exponentials, x0, th)))(thetas)
    checks.assert_close(submission.evaluate(run, submission.newton_solve), run(reference.newton_solve),
                        call="vmap(newton_solve) over 6 values of theta", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("implicit_root")
@pytest.mark.points(3)
def test_implicit_root_jacobian_matches_reference(submission, reference, rng):
    theta = np.concatenate([[np.float32(rng.uniform(0.5, 1.5))], normals(rng, 3)]).astype(np.float32)
    x0 = normals(rng, 3)
    jacobian = lambda root: jax.jit(jax.jacrev(root, argnums=2), static_argnums=0)(coupled_exponentials, x0, theta)
    checks.assert_close(submission.evaluate(jacobian, submission.implicit_root), jacobian(reference.implicit_root),
                        call="jacrev(implicit_root, argnums=2)(f, x0 (3,), theta (4,))", rtol=1e-4, atol=1e-5)
    value = submission.evaluate(
        lambda: jax.jit(submission.implicit_root, static_argnums=0)(coupled_exponentials, x0, theta))
    expected = jax.jit(reference.implicit_root, static_argnums=0)(coupled_exponentials, x0, theta)
    checks.assert_close(value, expected, call="implicit_root(f, x0 (3,), theta (4,))", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("implicit_root")
@pytest.mark.points(2)
def test_implicit_root_gradients_under_vmap_and_at_the_root(submission, reference, rng):
    """Started at the root, Newton takes one negligible step: the gradient must still be right."""
    thetas = np.concatenate([np.full((4, 1), 1.2, np.float32), normals(rng, 4, 2)], axis=1)

    def grads(root, start_at_root):
        def one(theta):
            x0 = reference.newton_solve(coupled_exponentials, jnp.zeros(2), theta) if start_at_root else jnp.zeros(2)
            return jax.grad(lambda th: jnp.sum(root(coupled_exponentials, x0, th) ** 2))(theta)
        return jax.jit(jax.vmap(one))(thetas)

    for start_at_root in (False, True):
        got = submission.evaluate(grads, submission.implicit_root, start_at_root)
        expected = grads(reference.implicit_root, start_at_root)
        where = "at" if start_at_root else "away from"
        checks.assert_close(got, expected, call=f"vmap(grad of |implicit_root|^2), starting {where} the root",
                            rtol=1e-4, atol=1e-5)
