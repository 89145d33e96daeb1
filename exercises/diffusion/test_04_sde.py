"""Visible tests for 04_sde.py.

Run them with `uv run pytest exercises/diffusion/test_04_sde.py`
(add `--exercise reverse_sde_step` to check a single exercise).

The tests use two stand-in "networks" whose right answers are known in closed form: a
linear map of `(x, t)`, and the exact noise predictor for Gaussian data N(0, s^2 I),
whose score is `-x / (m(t)^2 s^2 + std(t)^2)` (just `-x` for s = 1: the VP-SDE keeps
N(0, I) where it is).
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array

from course import schedules
from grader import checks
from grader.inputs import normals

SDE = schedules.VPSDE(beta_min=0.1, beta_max=20.0)


def integrated_beta(sde, t):
    """B(t), the integral of the linear beta of `sde` from 0 to t."""
    return sde.beta_min * t + 0.5 * (sde.beta_max - sde.beta_min) * t**2


def marginal(sde, t, xp=jnp):
    """`(mean_coeff, std)` of p(x_t | x_0), written out independently of the exercise.

    `xp=np` computes it with NumPy (in float64), which compiles nothing.
    """
    b = integrated_beta(sde, t)
    return xp.exp(-0.5 * b), xp.sqrt(-xp.expm1(-b))



class LinearNoiseModel(eqx.Module):
    """A stand-in network: predicted noise `W x + t b`."""

    weight: Array
    bias: Array

    def __init__(self, rng, dim=2):
        self.weight = jax.device_put((rng.normal(size=(dim, dim)) / np.sqrt(dim)).astype(np.float32))
        self.bias = jax.device_put(normals(rng, dim))

    def __call__(self, x, t):
        return self.weight @ x + t * self.bias


class GaussianNoiseModel(eqx.Module):
    """The exact noise predictor E[noise | x_t] for data N(0, data_std^2 I)."""

    data_std: Array

    def __init__(self, data_std):
        self.data_std = jax.device_put(np.float32(data_std))

    def __call__(self, x, t):
        mean_coeff, std = marginal(SDE, t)
        return std * x / (mean_coeff**2 * self.data_std**2 + std**2)


# --- Exercise 1: vp_marginal ---------------------------------------------------------------


@pytest.mark.exercise("vp_marginal")
def test_vp_marginal_at_time_zero(submission):
    mean_coeff, std = submission.vp_marginal(SDE, 0.0)
    checks.assert_close(mean_coeff, np.float32(1.0), call="vp_marginal(sde, 0.0)[0] (mean_coeff)")
    checks.assert_close(std, np.float32(0.0), call="vp_marginal(sde, 0.0)[1] (std)")


@pytest.mark.exercise("vp_marginal")
def test_vp_marginal_preserves_variance(submission):
    t = np.linspace(0.01, 1.0, 6, dtype=np.float32).reshape(2, 3)
    mean_coeff, std = jax.jit(submission.vp_marginal)(SDE, t)
    checks.assert_shape(mean_coeff, (2, 3), call="vp_marginal(sde, t of shape (2, 3))[0]")
    checks.assert_shape(std, (2, 3), call="vp_marginal(sde, t of shape (2, 3))[1]")
    mean_coeff, std = np.asarray(mean_coeff), np.asarray(std)
    checks.assert_close(mean_coeff**2 + std**2, np.ones((2, 3), np.float32), call="mean_coeff**2 + std**2")


@pytest.mark.exercise("vp_marginal")
def test_vp_marginal_matches_numerical_integration(submission):
    sde = schedules.VPSDE(beta_min=0.5, beta_max=5.0)  # not the default: no hard-coded numbers
    t = np.array([0.05, 0.3, 0.7, 1.0])
    grid = np.linspace(0.0, t, 2001)  # (2001, 4): the trapezoid rule on [0, t] for each t
    beta = sde.beta_min + grid * (sde.beta_max - sde.beta_min)  # sde.beta(grid), in NumPy's float64
    integral = np.sum(0.5 * (beta[1:] + beta[:-1]) * np.diff(grid, axis=0), axis=0)
    mean_coeff, std = jax.jit(submission.vp_marginal)(sde, t.astype(np.float32))
    checks.assert_close(mean_coeff, np.exp(-0.5 * integral).astype(np.float32),
                        call="vp_marginal(VPSDE(0.5, 5.0), t)[0]", rtol=1e-4)
    checks.assert_close(std, np.sqrt(1.0 - np.exp(-integral)).astype(np.float32),
                        call="vp_marginal(VPSDE(0.5, 5.0), t)[1]", rtol=1e-4)


# --- Exercise 2: model_score ---------------------------------------------------------------


@pytest.mark.exercise("model_score")
def test_model_score_divides_the_predicted_noise_by_std(submission, rng):
    model = LinearNoiseModel(rng)
    x = normals(rng, 5, 2)
    t = np.array([0.001, 0.1, 0.4, 0.8, 1.0], dtype=np.float32)
    score = jax.vmap(submission.model_score, in_axes=(None, None, 0, 0))
    got = eqx.filter_jit(score)(model, SDE, x, t)
    expected = jax.jit(lambda model, x, t: -jax.vmap(model)(x, t) / marginal(SDE, t)[1][:, None])(model, x, t)
    checks.assert_close(got, expected, call="model_score(linear model, sde, x, t) at 5 points", rtol=1e-4)


@pytest.mark.exercise("model_score")
def test_model_score_of_standard_normal_data_is_minus_x(submission, rng):
    x, t = normals(rng, 2), 0.3
    got = eqx.filter_jit(submission.model_score)(GaussianNoiseModel(1.0), SDE, x, t)
    checks.assert_close(got, -x, call="model_score(exact model of N(0, I) data, sde, x, 0.3)", rtol=1e-4)


# --- Exercise 3: weighted_dsm_loss ---------------------------------------------------------


def loss_from_the_spec(model, x0, key, t_min):
    t_key, noise_key = jax.random.split(key)
    t = jax.random.uniform(t_key, (x0.shape[0],), minval=t_min, maxval=1.0)
    noise = jax.random.normal(noise_key, x0.shape)
    mean_coeff, std = marginal(SDE, t)
    x_t = mean_coeff[:, None] * x0 + std[:, None] * noise
    scores = -jax.vmap(model)(x_t, t) / std[:, None]
    return jnp.mean(jnp.sum((std[:, None] * scores + noise) ** 2, axis=-1))


@pytest.mark.exercise("weighted_dsm_loss")
@pytest.mark.parametrize("t_min", [None, 0.3])
def test_loss_follows_the_spec(submission, rng, getkey, t_min):
    model, x0, key = LinearNoiseModel(rng), normals(rng, 16, 2), getkey()
    if t_min is None:
        yours = lambda model, x0, key: submission.weighted_dsm_loss(model, SDE, x0, key)
        t_min, call = 1e-3, "weighted_dsm_loss(linear model, sde, x0, key)"
    else:
        yours = lambda model, x0, key: submission.weighted_dsm_loss(model, SDE, x0, key, t_min)
        call = f"weighted_dsm_loss(linear model, sde, x0, key, t_min={t_min})"
    # Yours and the expected loss in one compiled program (t_min is static, a Python float).
    both = jax.jit(lambda model, x0, key: (yours(model, x0, key), loss_from_the_spec(model, x0, key, t_min)))
    got, expected = both(model, x0, key)
    checks.assert_close(got, expected, call=call, rtol=1e-4)


@pytest.mark.exercise("weighted_dsm_loss")
def test_loss_gradient_follows_the_spec(submission, rng, getkey):
    model, x0, key = LinearNoiseModel(rng), normals(rng, 16, 2), getkey()
    yours = lambda model: submission.weighted_dsm_loss(model, SDE, x0, key)
    both = jax.jit(lambda model: (jax.grad(yours)(model), jax.grad(loss_from_the_spec)(model, x0, key, 1e-3)))
    got, expected = both(model)  # yours and the expected gradient in one compiled program
    checks.assert_close(got, expected, call="gradient of weighted_dsm_loss w.r.t. the model",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("weighted_dsm_loss")
def test_loss_of_the_exact_model_has_the_right_mean(submission, rng, getkey):
    # For N(0, I) data and the exact noise predictor std * x_t, the loss of one example
    # is |(1 - std^2) noise - std m x0|^2, of mean d m(t)^2, averaged over t ~ U(t_min, 1).
    x0 = normals(rng, 20_000, 2)
    got = eqx.filter_jit(submission.weighted_dsm_loss)(GaussianNoiseModel(1.0), SDE, x0, getkey())
    expected = np.float32(2.0 * np.mean(marginal(SDE, np.linspace(1e-3, 1.0, 10_001), xp=np)[0] ** 2))
    checks.assert_close(got, expected, call="weighted_dsm_loss(exact model, N(0, I) data)", rtol=0.05)


# --- Exercise 4: reverse_sde_step ----------------------------------------------------------


@pytest.mark.exercise("reverse_sde_step")
def test_reverse_step_follows_the_update_rule(submission, rng, getkey):
    model, x, key = LinearNoiseModel(rng), normals(rng, 2), getkey()
    t, dt = 0.6, 0.01

    @jax.jit  # yours and the expected step in one compiled program; t and dt are static, as Python floats
    def yours_and_expected(model, x, key):
        beta = SDE.beta_min + t * (SDE.beta_max - SDE.beta_min)
        score = -model(x, t) / marginal(SDE, t)[1]
        z = jax.random.normal(key, (2,))
        expected = x + (0.5 * beta * x + beta * score) * dt + jnp.sqrt(beta * dt) * z
        return submission.reverse_sde_step(model, SDE, x, t, dt, key), expected

    got, expected = yours_and_expected(model, x, key)
    checks.assert_close(got, expected, call="reverse_sde_step(model, sde, x, 0.6, 0.01, key)", rtol=1e-4)


# --- Exercise 5: euler_maruyama_sampler ----------------------------------------------------


@pytest.mark.exercise("euler_maruyama_sampler")
def test_sampler_equals_a_python_loop(submission, rng, getkey):
    model, x1, key = LinearNoiseModel(rng), normals(rng, 3, 2), getkey()

    @jax.jit  # one compiled step for every k, not four
    def step(model, x, key, k):
        times = jnp.linspace(1.0, 0.01, 5)
        step_key = jax.random.split(key, 4)[k]
        move_all = jax.vmap(submission.reverse_sde_step, in_axes=(None, None, 0, None, None, 0))
        return move_all(model, SDE, x, times[k], times[k] - times[k + 1], jax.random.split(step_key, 3))

    x = x1
    for k in range(4):
        x = step(model, x, key, k)
    got = eqx.filter_jit(submission.euler_maruyama_sampler)(model, SDE, x1, key, 4, 0.01)
    checks.assert_close(got, x, call="euler_maruyama_sampler(model, sde, x1, key, 4, t_min=0.01)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("euler_maruyama_sampler")
def test_sampler_turns_noise_into_gaussian_data(submission, rng, getkey):
    # With the exact score of data N(0, 0.5^2 I), noise x1 ~ N(0, I) must end with std 0.5.
    x1 = normals(rng, 4000, 2)
    sampler = eqx.filter_jit(submission.euler_maruyama_sampler)
    samples = np.asarray(sampler(GaussianNoiseModel(0.5), SDE, x1, getkey(), 100))
    call = "euler_maruyama_sampler(exact model of N(0, 0.25 I) data, ..., num_steps=100)"
    checks.assert_close(samples.mean(0), np.zeros(2, np.float32), call=f"mean of {call}", atol=0.05)
    checks.assert_close(samples.std(0), np.full(2, 0.5, np.float32), call=f"std of {call}", atol=0.04)


# --- Exercise 6: probability_flow_drift ----------------------------------------------------


@pytest.mark.exercise("probability_flow_drift")
def test_drift_follows_the_formula(submission, rng):
    model, x = LinearNoiseModel(rng), normals(rng, 2)
    t = 0.4
    beta = SDE.beta_min + t * (SDE.beta_max - SDE.beta_min)
    weight, bias = np.asarray(model.weight, np.float64), np.asarray(model.bias, np.float64)
    score = -(weight @ x + t * bias) / marginal(SDE, t, xp=np)[1]  # model(x, t) in NumPy's float64
    got = eqx.filter_jit(submission.probability_flow_drift)(model, SDE, t, x)
    checks.assert_close(got, (-0.5 * beta * x - 0.5 * beta * score).astype(np.float32),
                        call="probability_flow_drift(model, sde, 0.4, x)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("probability_flow_drift")
def test_drift_vanishes_for_standard_normal_data(submission, rng):
    x, t = normals(rng, 8, 2), rng.uniform(0.01, 1.0, size=8).astype(np.float32)
    drift = jax.vmap(submission.probability_flow_drift, in_axes=(None, None, 0, 0))
    got = eqx.filter_jit(drift)(GaussianNoiseModel(1.0), SDE, t, x)
    checks.assert_close(got, np.zeros((8, 2), np.float32), call="probability_flow_drift(exact model of N(0, I) data)",
                        atol=1e-4)


# --- Exercise 7: solve_probability_flow ----------------------------------------------------


def solve_with_arrays(submission, model, x1, t_min, tol):
    """Solve with t_min and the tolerances as arrays: one trace serves every call (fast)."""
    solve = eqx.filter_jit(submission.solve_probability_flow)
    return solve(model, SDE, x1, t_min=np.float32(t_min), rtol=np.float32(tol), atol=np.float32(tol))


@pytest.mark.exercise("solve_probability_flow")
def test_flow_leaves_standard_normal_samples_in_place(submission, rng):
    x1 = normals(rng, 16, 2)
    solution = solve_with_arrays(submission, GaussianNoiseModel(1.0), x1, 1e-3, 1e-4)
    if not isinstance(solution, diffrax.Solution):
        checks.fail(f"solve_probability_flow returned a {type(solution).__name__}, expected the "
                    "diffrax.Solution that diffrax.diffeqsolve returns.")
    call = "solve_probability_flow(exact model of N(0, I) data, sde, x1, t_min=1e-3)"
    checks.assert_close(solution.ts, np.array([1e-3], np.float32), call=f"{call}.ts (SaveAt(t1=True), t1=t_min)")
    checks.assert_close(solution.ys, x1[None], call=f"{call}.ys (one state of shape (n, d))", atol=1e-4)


@pytest.mark.exercise("solve_probability_flow")
@pytest.mark.parametrize("t_min", [1e-3, 0.2])
def test_flow_maps_noise_to_gaussian_data_exactly(submission, rng, t_min):
    # For data N(0, s^2 I) the flow scales every point by sqrt(v(t) / v(1)),
    # with v(t) = m(t)^2 s^2 + std(t)^2 the variance of p_t.
    x1 = normals(rng, 16, 2)
    solution = solve_with_arrays(submission, GaussianNoiseModel(0.5), x1, t_min, 1e-5)
    variance = lambda t: marginal(SDE, t, xp=np)[0] ** 2 * 0.25 + marginal(SDE, t, xp=np)[1] ** 2
    expected = x1 * float(np.sqrt(variance(t_min) / variance(1.0)))
    checks.assert_close(np.asarray(solution.ys)[-1], expected, rtol=1e-3, atol=1e-4,
                        call=f"solve_probability_flow(exact model of N(0, 0.25 I) data, t_min={t_min}).ys[-1]")


@pytest.mark.exercise("solve_probability_flow")
def test_flow_uses_the_tolerances(submission, rng):
    x1 = normals(rng, 16, 2)
    steps = {tol: int(solve_with_arrays(submission, GaussianNoiseModel(0.5), x1, 1e-3, tol).stats["num_steps"])
             for tol in (1e-2, 1e-6)}
    if not steps[1e-6] > steps[1e-2]:
        checks.fail(f"solve_probability_flow took {steps[1e-6]} steps with rtol = atol = 1e-6 and "
                    f"{steps[1e-2]} with 1e-2: pass rtol and atol to diffrax.PIDController.")
