"""Visible tests for 02_newton_and_implicit.py.

Run them with `uv run pytest exercises/numerics/test_02_newton_and_implicit.py`
(add `--exercise newton_solve` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

from grader import checks


def cubic_system(x, theta):
    """A x + x^3 - b = 0 for a fixed well-conditioned A: a unique root, theta = b."""
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 5.0]], x.dtype)
    return a @ x + x**3 - theta


def numpy_cubic_system(x, theta):
    a = np.array([[3.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 5.0]])
    return a @ x + x**3 - theta, a + np.diag(3 * x**2)


def numpy_newton(residual_and_jacobian, x, theta, steps=30):
    """Newton's method in float64 NumPy, run well past convergence."""
    for _ in range(steps):
        residual, jacobian = residual_and_jacobian(x, theta)
        x = x - np.linalg.solve(jacobian, residual)
    return x


def optimistix_root(f, x0, theta):
    return optx.root_find(f, optx.Newton(rtol=1e-6, atol=1e-6), x0, args=theta).value


@pytest.mark.exercise("newton_solve")
def test_newton_solve_matches_optimistix(submission, rng):
    theta, x0 = rng.normal(size=(3,)).astype(np.float32) * 4, np.zeros(3, np.float32)
    got = checks.jitted(submission.newton_solve, cubic_system, x0, theta, call="jit(newton_solve)",
                        static_argnums=(0,))
    expected = jax.jit(optimistix_root, static_argnums=0)(cubic_system, x0, theta)
    checks.assert_close(got, expected, call="newton_solve(A x + x^3 - b, 0, b)", rtol=1e-5, atol=1e-5)
    residual = np.asarray(cubic_system(got, theta))
    checks.assert_close(residual, np.zeros(3, np.float32), call="the residual at newton_solve's root", atol=1e-4)


@pytest.mark.exercise("newton_solve")
def test_newton_solve_takes_newton_steps_up_to_max_steps(submission, rng):
    max_steps = 2
    theta, x0 = np.array([20.0, -15.0, 30.0]), rng.normal(size=(3,))
    x = x0.copy()
    for _ in range(max_steps):  # the Newton steps, in NumPy
        residual, jacobian = numpy_cubic_system(x, theta)
        x = x - np.linalg.solve(jacobian, residual)
    got = jax.jit(submission.newton_solve, static_argnums=(0, 4))(
        cubic_system, x0.astype(np.float32), theta.astype(np.float32), 1e-6, max_steps)
    checks.assert_close(got, x.astype(np.float32), call=f"newton_solve(..., tol=1e-6, max_steps={max_steps}) "
                        "far from the root", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("newton_solve")
def test_newton_solve_is_a_while_loop_and_vmaps(submission, rng):
    thetas, x0 = rng.normal(size=(5, 3)).astype(np.float32), np.zeros(3, np.float32)
    jaxpr = str(jax.make_jaxpr(submission.newton_solve, static_argnums=0)(cubic_system, x0, thetas[0]))
    if "while" not in jaxpr:
        checks.fail("newton_solve does not use jax.lax.while_loop (none in its jaxpr).")
    got = jax.jit(jax.vmap(lambda th: submission.newton_solve(cubic_system, x0, th)))(thetas)
    expected = np.stack([numpy_newton(numpy_cubic_system, np.zeros(3), th) for th in thetas.astype(np.float64)])
    expected = expected.astype(np.float32)
    checks.assert_close(got, expected, call="vmap(newton_solve) over 5 values of theta", rtol=1e-5, atol=1e-5)


def circle_meets_sine(x, theta):
    return jnp.stack([x[0] ** 2 + x[1] ** 2 - theta[0], x[1] - theta[1] * jnp.sin(x[0])])


def numpy_circle_meets_sine(x, theta):
    residual = np.array([x[0] ** 2 + x[1] ** 2 - theta[0], x[1] - theta[1] * np.sin(x[0])])
    return residual, np.array([[2 * x[0], 2 * x[1]], [-theta[1] * np.cos(x[0]), 1.0]])


@pytest.mark.exercise("implicit_root")
def test_implicit_root_gradient_matches_finite_differences(submission, rng):
    theta = np.array([rng.uniform(1.5, 3.0), rng.uniform(1.0, 2.0)], np.float32)
    x0 = np.ones(2, np.float32)
    root = jax.jit(submission.implicit_root, static_argnums=0)(circle_meets_sine, x0, theta)
    exact_root = numpy_newton(numpy_circle_meets_sine, np.ones(2), theta.astype(np.float64))
    checks.assert_close(root, exact_root.astype(np.float32), call="implicit_root(f, x0, theta)", rtol=1e-5, atol=1e-5)
    got = jax.jit(jax.jacrev(submission.implicit_root, argnums=2), static_argnums=0)(circle_meets_sine, x0, theta)
    h, theta64 = 1e-6, theta.astype(np.float64)  # central differences of a float64 NumPy solve
    columns = [(numpy_newton(numpy_circle_meets_sine, exact_root, theta64 + h * e)
                - numpy_newton(numpy_circle_meets_sine, exact_root, theta64 - h * e)) / (2 * h) for e in np.eye(2)]
    finite_differences = np.stack(columns, axis=1).astype(np.float32)
    checks.assert_close(got, finite_differences, call="jacrev(implicit_root) vs central differences",
                        rtol=1e-3, atol=1e-4)


@pytest.mark.exercise("implicit_root")
def test_implicit_root_gradient_is_the_inverse_jacobian(submission, rng):
    """For f(x, b) = A x + x^3 - b, dx*/db = J^-1: the gradient of w . sin(x*) is J^-T (w cos(x*))."""
    theta, x0 = (rng.normal(size=(3,)) * 3).astype(np.float32), np.zeros(3, np.float32)
    weights = rng.normal(size=(3,)).astype(np.float32)
    got = jax.jit(jax.grad(lambda th: jnp.sum(weights * jnp.sin(submission.implicit_root(cubic_system, x0, th)))))(
        theta)
    root = numpy_newton(numpy_cubic_system, np.zeros(3), theta.astype(np.float64))
    expected = np.linalg.solve(numpy_cubic_system(root, theta)[1].T, weights * np.cos(root)).astype(np.float32)
    checks.assert_close(got, expected, call="grad of w . sin(implicit_root(A x + x^3 - b, 0, b)) in b",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("implicit_root")
def test_implicit_root_has_a_custom_derivative(submission):
    jaxpr = str(jax.make_jaxpr(submission.implicit_root, static_argnums=0)(
        cubic_system, np.zeros(3, np.float32), np.ones(3, np.float32)))
    if "custom_vjp" not in jaxpr and "custom_jvp" not in jaxpr:
        checks.fail("implicit_root has no custom derivative rule: wrap the solve in jax.custom_vjp "
                    "(or use optimistix.root_find), instead of differentiating through the iterations.")
