"""Hidden tests for 04_sde.py: the student's functions against the reference."""

import functools

import diffrax
import equinox as eqx
import jax
import numpy as np
import pytest

from course import nn, schedules
from grader import checks
from grader.inputs import PlausibleNoiseModel, normals, with_numpy_weights


def uniform(rng, shape=(), minval=0.0, maxval=1.0):
    """Float32 test inputs drawn with NumPy (which compiles nothing, unlike jax.random)."""
    return np.asarray(rng.uniform(minval, maxval, size=shape), dtype=np.float32)



def random_sde(rng):
    """A VP-SDE with random (static) rates, so that hard-coded constants show."""
    return schedules.VPSDE(beta_min=float(uniform(rng, minval=0.05, maxval=0.5)),
                           beta_max=float(uniform(rng, minval=5.0, maxval=25.0)))


@functools.cache
def _model_shape():
    return eqx.filter_eval_shape(
        lambda: nn.TimeMLP(2, hidden_dim=16, depth=2, time_embedding_dim=16, max_time=1.0, key=jax.random.key(0))
    )


def random_model(rng):
    """A small TimeMLP with random weights, drawn with NumPy."""
    return with_numpy_weights(_model_shape(), rng)


def plausible_model(rng):
    return PlausibleNoiseModel(random_model(rng))  # the exact noise predictor plus a small random network


# --- Exercise 1: vp_marginal ---------------------------------------------------------------


@pytest.mark.exercise("vp_marginal")
@pytest.mark.points(2)
def test_vp_marginal_matches_reference(submission, reference, rng):
    sde, t = random_sde(rng), uniform(rng, (4, 5), minval=0.02)
    got = submission.evaluate(lambda: checks.jitted(submission.vp_marginal, sde, t, call="jit(vp_marginal)"))
    expected = jax.jit(reference.vp_marginal)(sde, t)
    checks.assert_close(got, expected, call=f"vp_marginal({sde}, t of shape (4, 5))", rtol=1e-4)


@pytest.mark.exercise("vp_marginal")
@pytest.mark.points(1)
def test_vp_marginal_near_time_zero(submission, reference, rng):
    sde, t = random_sde(rng), uniform(rng, (8,), minval=1e-3, maxval=1e-2)
    got = submission.evaluate(lambda: jax.jit(submission.vp_marginal)(sde, t))
    expected = jax.jit(reference.vp_marginal)(sde, t)
    checks.assert_close(got, expected, call="vp_marginal(sde, t) for t in [0.001, 0.01]", rtol=1e-3)


@pytest.mark.exercise("vp_marginal")
@pytest.mark.points(1)
def test_vp_marginal_of_a_python_float(submission, reference, rng):
    sde, t = random_sde(rng), float(uniform(rng))
    got = submission.vp_marginal(sde, t)
    checks.assert_close(got, reference.vp_marginal(sde, t), call=f"vp_marginal(sde, {t:.4f})", rtol=1e-4)


# --- Exercise 2: model_score ---------------------------------------------------------------


@pytest.mark.exercise("model_score")
@pytest.mark.points(2)
def test_model_score_matches_reference(submission, reference, rng):
    model, sde = random_model(rng), random_sde(rng)
    x, t = normals(rng, 16, 2), uniform(rng, (16,), minval=1e-3)
    in_axes = (None, None, 0, 0)
    got = submission.evaluate(lambda: eqx.filter_jit(jax.vmap(submission.model_score, in_axes))(model, sde, x, t))
    expected = eqx.filter_jit(jax.vmap(reference.model_score, in_axes))(model, sde, x, t)
    checks.assert_close(got, expected, call="vmap(model_score) on 16 random points and times", rtol=1e-4)


@pytest.mark.exercise("model_score")
@pytest.mark.points(1)
def test_model_score_with_a_python_float_time(submission, reference, rng):
    model, sde, x = random_model(rng), random_sde(rng), normals(rng, 2)
    t = float(uniform(rng, minval=0.01))
    got = submission.evaluate(lambda: eqx.filter_jit(submission.model_score)(model, sde, x, t))
    expected = eqx.filter_jit(reference.model_score)(model, sde, x, t)
    checks.assert_close(got, expected, call=f"model_score(model, sde, x, {t:.4f})", rtol=1e-4)


# --- Exercise 3: weighted_dsm_loss ---------------------------------------------------------


# Random static settings (the SDE's rates and t_min choose the compiled program) shared by a
# `*_matches_reference` test and its `*_uses_the_key` twin, which thus reuses the compiled program.
_settings = np.random.default_rng(2024)
LOSS_SDE, LOSS_T_MIN = random_sde(_settings), float(uniform(_settings, minval=1e-3, maxval=0.1))
STEP_SDE = random_sde(_settings)


def loss_inputs(rng, getkey, sde=None, t_min=None):
    model, sde = random_model(rng), random_sde(rng) if sde is None else sde
    x0 = normals(rng, 32, 2)
    t_min = float(uniform(rng, minval=1e-3, maxval=0.1)) if t_min is None else t_min
    return model, sde, x0, getkey(), t_min


@pytest.mark.exercise("weighted_dsm_loss")
@pytest.mark.points(2)
def test_weighted_dsm_loss_matches_reference(submission, reference, rng, getkey):
    model, sde, x0, key, t_min = loss_inputs(rng, getkey, LOSS_SDE, LOSS_T_MIN)
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.weighted_dsm_loss), model, sde, x0, key, t_min, call="weighted_dsm_loss"))
    expected = eqx.filter_jit(reference.weighted_dsm_loss)(model, sde, x0, key, t_min)
    checks.assert_close(got, expected, call=f"weighted_dsm_loss(model, sde, x0, key, t_min={t_min:.4f})",
                        rtol=1e-4)


@pytest.mark.exercise("weighted_dsm_loss")
@pytest.mark.points(2)
def test_weighted_dsm_loss_gradient_matches_reference(submission, reference, rng, getkey):
    model, sde, x0, key, t_min = loss_inputs(rng, getkey)
    got = submission.evaluate(
        lambda: eqx.filter_jit(eqx.filter_grad(submission.weighted_dsm_loss))(model, sde, x0, key, t_min))
    expected = eqx.filter_jit(eqx.filter_grad(reference.weighted_dsm_loss))(model, sde, x0, key, t_min)
    checks.assert_close(got, expected, call="eqx.filter_grad(weighted_dsm_loss)(model, ...)",
                        rtol=1e-3, atol=1e-5)


@pytest.mark.exercise("weighted_dsm_loss")
@pytest.mark.points(1)
def test_weighted_dsm_loss_uses_the_key(submission, rng, getkey):
    model, sde, x0, _, t_min = loss_inputs(rng, getkey, LOSS_SDE, LOSS_T_MIN)
    keys = getkey(), getkey()
    loss = lambda key: eqx.filter_jit(submission.weighted_dsm_loss)(model, sde, x0, key, t_min)
    checks.assert_different(*submission.evaluate(lambda: [loss(key) for key in keys]),
                            call="weighted_dsm_loss",
                            why="two different keys gave the same loss; draw t and the noise from `key`.")


# --- Exercise 4: reverse_sde_step ----------------------------------------------------------


def step_inputs(rng, sde):
    model, x = random_model(rng), normals(rng, 2)
    t, dt = uniform(rng, minval=0.1), uniform(rng, minval=1e-3, maxval=0.05)  # float32 arrays of shape ()
    return model, sde, x, t, dt


@pytest.mark.exercise("reverse_sde_step")
@pytest.mark.points(2)
def test_reverse_sde_step_matches_reference(submission, reference, rng, getkey):
    model, sde, x, t, dt = step_inputs(rng, STEP_SDE)
    key = getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.reverse_sde_step), model, sde, x, t, dt, key, call="reverse_sde_step"))
    expected = eqx.filter_jit(reference.reverse_sde_step)(model, sde, x, t, dt, key)
    checks.assert_close(got, expected, call=f"reverse_sde_step(model, sde, x, {float(t):.4f}, "
                        f"{float(dt):.4f}, key)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("reverse_sde_step")
@pytest.mark.points(1)
def test_reverse_sde_step_uses_the_key(submission, rng, getkey):
    model, sde, x, t, dt = step_inputs(rng, STEP_SDE)
    keys = getkey(), getkey()
    step = lambda key: eqx.filter_jit(submission.reverse_sde_step)(model, sde, x, t, dt, key)
    checks.assert_different(*submission.evaluate(lambda: [step(key) for key in keys]),
                            call="reverse_sde_step",
                            why="two different keys gave the same step; the noise z must come from `key`.")


# --- Exercise 5: euler_maruyama_sampler ----------------------------------------------------


@pytest.mark.exercise("euler_maruyama_sampler")
@pytest.mark.points(3)
def test_euler_maruyama_sampler_matches_reference(submission, reference, rng, getkey):
    model, sde, x1 = plausible_model(rng), schedules.VPSDE(), normals(rng, 8, 2)
    key, t_min = getkey(), float(uniform(rng, minval=1e-3, maxval=0.05))
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.euler_maruyama_sampler), model, sde, x1, key, 20, t_min,
        call="euler_maruyama_sampler"))
    expected = eqx.filter_jit(reference.euler_maruyama_sampler)(model, sde, x1, key, 20, t_min)
    checks.assert_close(got, expected, call=f"euler_maruyama_sampler(model, sde, x1, key, 20, {t_min:.4f})",
                        rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("euler_maruyama_sampler")
@pytest.mark.points(2)
def test_euler_maruyama_sampler_is_one_scan(submission, rng, getkey):
    model, x1 = random_model(rng), normals(rng, 4, 2)
    sampler = lambda x1, key: submission.euler_maruyama_sampler(model, schedules.VPSDE(), x1, key, 50)
    keys = getkey(), getkey(), getkey()

    def jaxpr_traced_once():
        jaxpr = str(jax.make_jaxpr(sampler)(x1, keys[0]))
        counted = jax.jit(checks.assert_max_traces(sampler, n=1))
        counted(x1, keys[1])
        counted(x1 + 1.0, keys[2])
        return jaxpr

    jaxpr = submission.evaluate(jaxpr_traced_once)
    if "scan" not in jaxpr:
        checks.fail("euler_maruyama_sampler does not use jax.lax.scan (no scan in its jaxpr).")
    if jaxpr.count("random_bits") > 3:
        checks.fail("euler_maruyama_sampler unrolls its loop: use jax.lax.scan over the steps, "
                    "not a Python for loop.")


@pytest.mark.exercise("euler_maruyama_sampler")
@pytest.mark.points(1)
def test_euler_maruyama_sampler_uses_the_key(submission, rng, getkey):
    model, sde, x1 = random_model(rng), schedules.VPSDE(), normals(rng, 4, 2)
    keys = getkey(), getkey()
    sampler = lambda key: eqx.filter_jit(submission.euler_maruyama_sampler)(model, sde, x1, key, 5)
    checks.assert_different(*submission.evaluate(lambda: [sampler(key) for key in keys]),
                            call="euler_maruyama_sampler",
                            why="two different keys gave the same samples; split `key` for the steps.")


# --- Exercise 6: probability_flow_drift ----------------------------------------------------


@pytest.mark.exercise("probability_flow_drift")
@pytest.mark.points(2)
def test_probability_flow_drift_matches_reference(submission, reference, rng):
    model, sde = random_model(rng), random_sde(rng)
    t, x = uniform(rng, (16,), minval=1e-3), normals(rng, 16, 2)
    in_axes = (None, None, 0, 0)
    got = submission.evaluate(
        lambda: eqx.filter_jit(jax.vmap(submission.probability_flow_drift, in_axes))(model, sde, t, x))
    expected = eqx.filter_jit(jax.vmap(reference.probability_flow_drift, in_axes))(model, sde, t, x)
    checks.assert_close(got, expected, call="vmap(probability_flow_drift) on 16 random points and times",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("probability_flow_drift")
@pytest.mark.points(1)
def test_probability_flow_drift_jacobian_matches_reference(submission, reference, rng):
    # The divergence of the drift gives the ODE's exact log-likelihood, so it must differentiate.
    model, sde = random_model(rng), random_sde(rng)
    t, x = float(uniform(rng, minval=0.05)), normals(rng, 2)
    jacobian = lambda drift: eqx.filter_jit(jax.jacfwd(drift, argnums=3))(model, sde, t, x)
    got = submission.evaluate(lambda: jacobian(submission.probability_flow_drift))
    checks.assert_close(got, jacobian(reference.probability_flow_drift),
                        call="jax.jacfwd(probability_flow_drift) with respect to x", rtol=1e-3, atol=1e-4)


# --- Exercise 7: solve_probability_flow ----------------------------------------------------


def solve_twice(solve, model, x1, t_min):
    """Solve with rtol = atol = 1e-3 and 1e-6. t_min and the tolerances are passed as arrays and
    the SDE is the default one, so one compiled solver serves every call of these tests.

    Each solution as `(is a diffrax.Solution, ts, ys, number of steps)`."""
    solve = eqx.filter_jit(solve)
    solutions = [solve(model, schedules.VPSDE(), x1, t_min=np.float32(t_min), rtol=np.float32(tol),
                       atol=np.float32(tol)) for tol in (1e-3, 1e-6)]
    return [(isinstance(s, diffrax.Solution), s.ts, s.ys, s.stats["num_steps"]) if isinstance(s, diffrax.Solution)
            else (False, None, None, None) for s in solutions]


@pytest.mark.exercise("solve_probability_flow")
@pytest.mark.points(3)
def test_solve_probability_flow_matches_reference(submission, reference, rng):
    model, x1 = plausible_model(rng), normals(rng, 16, 2)
    t_min = float(uniform(rng, minval=1e-3, maxval=0.05))
    _, (is_solution, ts, ys, _) = submission.evaluate(
        lambda: solve_twice(submission.solve_probability_flow, model, x1, t_min))
    _, (_, expected_ts, expected_ys, _) = solve_twice(reference.solve_probability_flow, model, x1, t_min)
    if not is_solution:
        checks.fail("solve_probability_flow did not return the diffrax.Solution that diffrax.diffeqsolve returns.")
    call = f"solve_probability_flow(model, sde, x1 of shape (16, 2), t_min={t_min:.4f}, rtol=atol=1e-6)"
    checks.assert_close(ts, expected_ts, call=f"{call}.ts")
    # Tight tolerances: a solver started with another dt0 still agrees to ~1e-4.
    checks.assert_close(ys, expected_ys, call=f"{call}.ys", rtol=1e-3, atol=1e-3)


@pytest.mark.exercise("solve_probability_flow")
@pytest.mark.points(1)
def test_solve_probability_flow_step_counts(submission, reference, rng):
    model, x1 = plausible_model(rng), normals(rng, 16, 2)
    solutions = submission.evaluate(lambda: solve_twice(submission.solve_probability_flow, model, x1, 1e-3))
    if not all(is_solution for is_solution, *_ in solutions):
        checks.fail("solve_probability_flow did not return the diffrax.Solution that diffrax.diffeqsolve returns.")
    loose, tight = [int(steps) for *_, steps in solutions]
    _, expected = [int(steps) for *_, steps in solve_twice(reference.solve_probability_flow, model, x1, 1e-3)]
    if not loose < tight:
        checks.fail(f"solve_probability_flow took {loose} steps with rtol = atol = 1e-3 and {tight} with "
                    "1e-6: pass rtol and atol to diffrax.PIDController.")
    if not 0.8 * expected <= tight <= 1.25 * expected:
        checks.fail(f"solve_probability_flow with rtol = atol = 1e-6 took {tight} steps, the reference "
                    f"{expected}: use diffrax.Tsit5() with diffrax.PIDController(rtol=rtol, atol=atol).")
