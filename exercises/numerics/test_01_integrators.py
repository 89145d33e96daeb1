"""Visible tests for 01_integrators.py.

Run them with `uv run pytest exercises/numerics/test_01_integrators.py`
(add `--exercise rk4_step` to check a single exercise).
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks


def forced(t, y, args):
    """A nonlinear, time-dependent vector field with parameters."""
    a, b = args
    return -a * y**3 + b * jnp.sin(t) * jnp.roll(y, 1)


def numpy_forced(t, y, args):
    a, b = args
    return -a * y**3 + b * np.sin(t) * np.roll(y, 1)


@pytest.mark.exercise("euler_step")
def test_euler_step_follows_the_tangent(submission, rng):
    y, args = rng.normal(size=(3,)).astype(np.float32), (np.float32(0.5), np.float32(2.0))
    t, dt = np.float32(0.3), np.float32(0.1)
    got = checks.jitted(submission.euler_step, forced, t, y, dt, args, call="jit(euler_step)", static_argnums=(0,))
    expected = y + dt * numpy_forced(t, y, args)
    checks.assert_close(got, expected, call="euler_step(f, 0.3, y (3,), 0.1, args)", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("rk4_step")
def test_rk4_step_of_exponential_growth_is_the_taylor_polynomial(submission):
    h = np.float32(0.2)
    got = checks.jitted(submission.rk4_step, lambda t, y, args: y, np.float32(0.0), np.ones(1, np.float32), h, None,
                        call="jit(rk4_step)", static_argnums=(0,))
    expected = np.array([1 + h + h**2 / 2 + h**3 / 6 + h**4 / 24], np.float32)
    checks.assert_close(got, expected, call="rk4_step for dy/dt = y from y = 1, dt = 0.2", rtol=1e-6)


@pytest.mark.exercise("rk4_step")
def test_rk4_step_equals_a_numpy_rk4(submission, rng):
    y, args = rng.normal(size=(4,)), (0.7, -1.3)
    t, dt = 0.4, 0.15
    k1 = numpy_forced(t, y, args)
    k2 = numpy_forced(t + dt / 2, y + dt / 2 * k1, args)
    k3 = numpy_forced(t + dt / 2, y + dt / 2 * k2, args)
    k4 = numpy_forced(t + dt, y + dt * k3, args)
    expected = (y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)).astype(np.float32)
    f32 = lambda x: np.float32(x)
    got = jax.jit(submission.rk4_step, static_argnums=0)(forced, f32(t), y.astype(np.float32), f32(dt),
                                                          (f32(args[0]), f32(args[1])))
    checks.assert_close(got, expected, call="rk4_step(f, 0.4, y (4,), 0.15, args)", rtol=1e-5, atol=1e-5)


def fixed_steps(step, f, y0, t0, t1, n_steps, args):
    """The states after each of `n_steps` equal steps: the test's own loop, so that the steps'
    checks do not wait for the later exercise `solve_fixed_step`."""
    dt = (t1 - t0) / n_steps

    def advance(y, i):
        y = step(f, t0 + i * dt, y, dt, args)
        return y, y

    return jax.lax.scan(advance, y0, jnp.arange(n_steps))[1]


def observed_order(solve, step, steps):
    """Slope of log(error at t = 2) against log(dt) for dy/dt = theta cos(t) y, in double precision."""
    with jax.enable_x64(True):
        y0 = jnp.array([1.0, 2.0])
        run = jax.jit(lambda n_steps: solve(step, lambda t, y, th: th * jnp.cos(t) * y, y0, 0.0, 2.0, n_steps, 0.8),
                      static_argnums=0)
        errors = [float(jnp.max(jnp.abs(run(n)[-1] - y0 * np.exp(0.8 * np.sin(2.0))))) for n in steps]
    return np.polyfit(np.log(2.0 / np.array(steps)), np.log(errors), 1)[0]


@pytest.mark.exercise("rk4_step")
def test_rk4_has_order_four(submission):
    order = observed_order(fixed_steps, submission.rk4_step, (8, 16, 32))
    if not 3.7 < order < 4.3:
        checks.fail(f"The error of RK4 shrinks like dt^{order:.2f} (from a regression of log error on log dt), "
                    "expected dt^4.")


@pytest.mark.exercise("euler_step")
def test_euler_has_order_one(submission):
    order = observed_order(fixed_steps, submission.euler_step, (100, 200, 400))
    if not 0.85 < order < 1.15:
        checks.fail(f"The error of Euler's method shrinks like dt^{order:.2f}, expected dt^1.")


def numpy_euler(f, t, y, dt, args):
    return y + dt * f(t, y, args)


@pytest.mark.exercise("solve_fixed_step")
def test_solve_fixed_step_equals_a_python_loop(submission, rng):
    y0, args = rng.normal(size=(3,)).astype(np.float32), (np.float32(0.5), np.float32(1.5))
    t0, t1, n = 0.5, 2.0, 6
    y, expected, dt = y0.copy(), [y0.copy()], np.float32((t1 - t0) / n)
    for k in range(n):
        y = numpy_euler(numpy_forced, np.float32(t0 + k * dt), y, dt, args).astype(np.float32)
        expected.append(y)
    got = jax.jit(submission.solve_fixed_step, static_argnums=(0, 1, 5))(numpy_euler, forced, y0, t0, t1, n, args)
    checks.assert_close(got, np.stack(expected), call="solve_fixed_step(an Euler step, f, y0 (3,), 0.5, 2.0, 6, args)",
                        rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("solve_fixed_step")
def test_solve_fixed_step_is_one_scan(submission):
    solve = lambda y0: submission.solve_fixed_step(numpy_euler, lambda t, y, a: -y, y0, 0.0, 1.0, 50)
    jaxpr = jax.make_jaxpr(solve)(np.ones(2, np.float32))
    if "scan" not in str(jaxpr):
        checks.fail("solve_fixed_step does not use jax.lax.scan (no scan in its jaxpr).")
    if len(jaxpr.jaxpr.eqns) > 20:
        checks.fail("solve_fixed_step unrolls its loop: let jax.lax.scan run over the step index.")


def lotka_volterra(t, y, params):
    alpha, beta, gamma, delta = params
    prey, predators = y
    return jnp.stack([alpha * prey - beta * prey * predators, -gamma * predators + delta * prey * predators])


def diffrax_final_state(params, y0, t1):
    solution = diffrax.diffeqsolve(diffrax.ODETerm(lotka_volterra), diffrax.Tsit5(), t0=0.0, t1=t1, dt0=0.01, y0=y0,
                                   args=params, stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-7))
    return solution.ys[-1]


@pytest.mark.exercise("solve_fixed_step")
def test_rk4_solve_matches_diffrax(submission):
    params, y0, t1 = np.array([1.0, 0.5, 1.5, 0.5], np.float32), np.array([2.0, 1.0], np.float32), 5.0
    got = jax.jit(lambda p: submission.solve_fixed_step(submission.rk4_step, lotka_volterra, y0, 0.0, t1, 200, p))(
        params)
    expected = jax.jit(diffrax_final_state, static_argnums=2)(params, y0, t1)
    checks.assert_close(got[-1], expected, call="the final state of Lotka-Volterra, RK4 with 200 steps vs Diffrax",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("solve_fixed_step")
def test_gradient_through_the_solve(submission):
    """y(t) = y0 exp(theta sin t) solves dy/dt = theta cos(t) y, so dy(t)/dtheta = sin(t) y(t)."""
    y0, theta, t1 = np.array([1.0, -0.5], np.float32), np.float32(0.6), 2.5
    final = lambda th: submission.solve_fixed_step(
        submission.rk4_step, lambda t, y, a: a * jnp.cos(t) * y, y0, 0.0, t1, 100, th)[-1]
    got = jax.jit(jax.jacrev(final))(theta)
    expected = (np.sin(t1) * y0 * np.exp(theta * np.sin(t1))).astype(np.float32)
    checks.assert_close(got, expected, call="d y(2.5) / d theta through 100 RK4 steps", rtol=1e-4, atol=1e-5)
