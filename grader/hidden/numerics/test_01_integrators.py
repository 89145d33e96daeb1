"""Hidden tests for 01_integrators.py: the student's functions against the reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def damped(t, y, args):
    """A damped, driven pendulum; y has shape (2, k): k pendulums at once."""
    damping, drive = args
    angle, velocity = y
    return jnp.stack([velocity, -jnp.sin(angle) - damping * velocity + drive * jnp.cos(2 * t)])


@pytest.mark.exercise("euler_step")
@pytest.mark.points(1)
def test_euler_step_matches_reference(submission, reference, rng):
    y, args = normals(rng, 2, 3), (np.float32(0.3), np.float32(0.8))
    t, dt = np.float32(rng.uniform(0, 2)), np.float32(rng.uniform(0.01, 0.3))
    got = submission.evaluate(lambda: checks.jitted(submission.euler_step, damped, t, y, dt, args,
                                                    call="jit(euler_step)", static_argnums=(0,)))
    expected = jax.jit(reference.euler_step, static_argnums=0)(damped, t, y, dt, args)
    checks.assert_close(got, expected, call=f"euler_step(pendulum, {t:.2f}, y (2, 3), {dt:.3f}, args)",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("rk4_step")
@pytest.mark.points(2)
def test_rk4_step_matches_reference(submission, reference, rng):
    y, args = normals(rng, 2, 4), (np.float32(0.2), np.float32(1.1))
    t, dt = np.float32(rng.uniform(0, 2)), np.float32(rng.uniform(0.05, 0.5))
    got = submission.evaluate(lambda: checks.jitted(submission.rk4_step, damped, t, y, dt, args,
                                                    call="jit(rk4_step)", static_argnums=(0,)))
    expected = jax.jit(reference.rk4_step, static_argnums=0)(damped, t, y, dt, args)
    checks.assert_close(got, expected, call=f"rk4_step(pendulum, {t:.2f}, y (2, 4), {dt:.3f}, args)",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("rk4_step")
@pytest.mark.points(2)
def test_rk4_order_on_a_harmonic_oscillator(submission):
    """y = (cos(w t), -w sin(w t)) solves x'' = -w^2 x; the error at t = 3 shrinks like dt^4."""
    omega = 1.7
    oscillator = lambda t, y, w: jnp.stack([y[1], -(w**2) * y[0]])
    steps = np.array([12, 24, 48, 96])

    def final_states():
        with jax.enable_x64(True):
            run = jax.jit(lambda n: submission.solve_fixed_step(submission.rk4_step, oscillator, jnp.array([1.0, 0.0]),
                                                                0.0, 3.0, n, omega), static_argnums=0)
            return [np.asarray(run(int(n))[-1]) for n in steps]

    exact = np.array([np.cos(3 * omega), -omega * np.sin(3 * omega)])
    errors = [float(np.max(np.abs(final - exact))) for final in submission.evaluate(final_states)]
    order = np.polyfit(np.log(3.0 / steps), np.log(errors), 1)[0]
    if not 3.7 < order < 4.3:
        checks.fail(f"On a harmonic oscillator the error of RK4 shrinks like dt^{order:.2f}, expected dt^4.")


@pytest.mark.exercise("solve_fixed_step")
@pytest.mark.points(2)
def test_solve_fixed_step_matches_reference(submission, reference, rng):
    y0, args = normals(rng, 2, 3), (np.float32(0.3), np.float32(0.5))
    t0, t1, n = float(rng.uniform(-1, 0)), float(rng.uniform(1, 3)), 17
    solve = lambda solver, step: jax.jit(solver, static_argnums=(0, 1, 5))(step, damped, y0, t0, t1, n, args)
    for step_name in ("euler_step", "rk4_step"):
        step = getattr(reference, step_name)
        got = submission.evaluate(solve, submission.solve_fixed_step, step)
        expected = solve(reference.solve_fixed_step, step)
        checks.assert_close(got, expected, call=f"solve_fixed_step({step_name}, pendulum, y0 (2, 3), {t0:.2f}, "
                            f"{t1:.2f}, 17, args)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("solve_fixed_step")
@pytest.mark.points(2)
def test_gradient_and_vmap_through_the_solve(submission, reference, rng):
    y0s = normals(rng, 5, 2, 1)
    args = (np.float32(0.4), np.float32(0.7))

    def final_energy(args, y0, solve):
        y = solve(reference.rk4_step, damped, y0, 0.0, 4.0, 40, args)[-1]
        return jnp.sum(0.5 * y[1] ** 2 - jnp.cos(y[0]))

    def mean_energy_and_grad(solve):
        total = lambda args: jnp.mean(jax.vmap(lambda y0: final_energy(args, y0, solve))(y0s))
        return jax.jit(jax.value_and_grad(total))(args)

    got = submission.evaluate(lambda: mean_energy_and_grad(submission.solve_fixed_step))
    expected = mean_energy_and_grad(reference.solve_fixed_step)
    checks.assert_close(got, expected, rtol=1e-4, atol=1e-5,
                        call="value_and_grad of the mean final energy of 5 pendulums (vmap, 40 RK4 steps)")


@pytest.mark.exercise("solve_fixed_step")
@pytest.mark.points(1)
def test_solve_fixed_step_is_a_scan(submission):
    def jaxpr_and_length():
        jaxpr = jax.make_jaxpr(lambda y0: submission.solve_fixed_step(
            lambda f, t, y, dt, a: y + dt * f(t, y, a), lambda t, y, a: -y, y0, 0.0, 1.0, 100))(np.ones(3, np.float32))
        return str(jaxpr), len(jaxpr.jaxpr.eqns)

    jaxpr, num_eqns = submission.evaluate(jaxpr_and_length)
    if "scan" not in jaxpr or num_eqns > 20:
        checks.fail("solve_fixed_step must run its steps in one jax.lax.scan, not a Python loop.")
