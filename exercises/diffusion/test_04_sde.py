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

SDE = schedules.VPSDE(beta_min=0.1, beta_max=20.0)


def integrated_beta(sde, t):
    """B(t), the integral of the linear beta of `sde` from 0 to t."""
    return sde.beta_min * t + 0.5 * (sde.beta_max - sde.beta_min) * t**2


def marginal(sde, t):
    """`(mean_coeff, std)` of p(x_t | x_0), written out independently of the exercise."""
    b = integrated_beta(sde, t)
    return jnp.exp(-0.5 * b), jnp.sqrt(-jnp.expm1(-b))


class LinearNoiseModel(eqx.Module):
    """A stand-in network: predicted noise `W x + t b`."""

    weight: Array
    bias: Array

    def __init__(self, key, dim=2):
        weight_key, bias_key = jax.random.split(key)
        self.weight = jax.random.normal(weight_key, (dim, dim)) / jnp.sqrt(dim)
        self.bias = jax.random.normal(bias_key, (dim,))

    def __call__(self, x, t):
        return self.weight @ x + t * self.bias


class GaussianNoiseModel(eqx.Module):
    """The exact noise predictor E[noise | x_t] for data N(0, data_std^2 I)."""

    data_std: Array

    def __init__(self, data_std):
        self.data_std = jnp.asarray(data_std, dtype=jnp.float32)

    def __call__(self, x, t):
        mean_coeff, std = marginal(SDE, t)
        return std * x / (mean_coeff**2 * self.data_std**2 + std**2)


# --- Exercise 1: vp_marginal ---------------------------------------------------------------


@pytest.mark.exercise("vp_marginal")
def test_vp_marginal_at_time_zero(submission):
    mean_coeff, std = submission.vp_marginal(SDE, 0.0)
    checks.assert_close(mean_coeff, jnp.array(1.0), call="vp_marginal(sde, 0.0)[0] (mean_coeff)")
    checks.assert_close(std, jnp.array(0.0), call="vp_marginal(sde, 0.0)[1] (std)")


@pytest.mark.exercise("vp_marginal")
def test_vp_marginal_preserves_variance(submission):
    t = jnp.linspace(0.01, 1.0, 6).reshape(2, 3)
    mean_coeff, std = jax.jit(submission.vp_marginal)(SDE, t)
    checks.assert_shape(mean_coeff, (2, 3), call="vp_marginal(sde, t of shape (2, 3))[0]")
    checks.assert_shape(std, (2, 3), call="vp_marginal(sde, t of shape (2, 3))[1]")
    checks.assert_close(mean_coeff**2 + std**2, jnp.ones((2, 3)), call="mean_coeff**2 + std**2")


@pytest.mark.exercise("vp_marginal")
def test_vp_marginal_matches_numerical_integration(submission):
    sde = schedules.VPSDE(beta_min=0.5, beta_max=5.0)  # not the default: no hard-coded numbers
    t = np.array([0.05, 0.3, 0.7, 1.0])
    grid = np.linspace(0.0, t, 2001)  # (2001, 4): the trapezoid rule on [0, t] for each t
    beta = np.asarray(sde.beta(grid), dtype=np.float64)
    integral = np.sum(0.5 * (beta[1:] + beta[:-1]) * np.diff(grid, axis=0), axis=0)
    mean_coeff, std = jax.jit(submission.vp_marginal)(sde, jnp.asarray(t, dtype=jnp.float32))
    checks.assert_close(mean_coeff, np.exp(-0.5 * integral).astype(np.float32),
                        call="vp_marginal(VPSDE(0.5, 5.0), t)[0]", rtol=1e-4)
    checks.assert_close(std, np.sqrt(1.0 - np.exp(-integral)).astype(np.float32),
                        call="vp_marginal(VPSDE(0.5, 5.0), t)[1]", rtol=1e-4)


# --- Exercise 2: model_score ---------------------------------------------------------------


@pytest.mark.exercise("model_score")
def test_model_score_divides_the_predicted_noise_by_std(submission, getkey):
    model = LinearNoiseModel(getkey())
    x = jax.random.normal(getkey(), (5, 2))
    t = jnp.array([0.001, 0.1, 0.4, 0.8, 1.0])
    score = jax.vmap(submission.model_score, in_axes=(None, None, 0, 0))
    got = eqx.filter_jit(score)(model, SDE, x, t)
    expected = jax.jit(lambda model, x, t: -jax.vmap(model)(x, t) / marginal(SDE, t)[1][:, None])(model, x, t)
    checks.assert_close(got, expected, call="model_score(linear model, sde, x, t) at 5 points", rtol=1e-4)


@pytest.mark.exercise("model_score")
def test_model_score_of_standard_normal_data_is_minus_x(submission, getkey):
    x, t = jax.random.normal(getkey(), (2,)), 0.3
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
def test_loss_follows_the_spec(submission, getkey, t_min):
    model, x0, key = LinearNoiseModel(getkey()), jax.random.normal(getkey(), (16, 2)), getkey()
    if t_min is None:
        got = eqx.filter_jit(submission.weighted_dsm_loss)(model, SDE, x0, key)
        t_min, call = 1e-3, "weighted_dsm_loss(linear model, sde, x0, key)"
    else:
        got = eqx.filter_jit(submission.weighted_dsm_loss)(model, SDE, x0, key, t_min)
        call = f"weighted_dsm_loss(linear model, sde, x0, key, t_min={t_min})"
    expected = jax.jit(loss_from_the_spec, static_argnums=3)(model, x0, key, t_min)
    checks.assert_close(got, expected, call=call, rtol=1e-4)


@pytest.mark.exercise("weighted_dsm_loss")
def test_loss_gradient_follows_the_spec(submission, getkey):
    model, x0, key = LinearNoiseModel(getkey()), jax.random.normal(getkey(), (16, 2)), getkey()
    got = eqx.filter_jit(eqx.filter_grad(submission.weighted_dsm_loss))(model, SDE, x0, key)
    expected = eqx.filter_jit(eqx.filter_grad(loss_from_the_spec))(model, x0, key, 1e-3)
    checks.assert_close(got, expected, call="gradient of weighted_dsm_loss w.r.t. the model",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("weighted_dsm_loss")
def test_loss_of_the_exact_model_has_the_right_mean(submission, getkey):
    # For N(0, I) data and the exact noise predictor std * x_t, the loss of one example
    # is |(1 - std^2) noise - std m x0|^2, of mean d m(t)^2, averaged over t ~ U(t_min, 1).
    x0 = jax.random.normal(getkey(), (20_000, 2))
    got = eqx.filter_jit(submission.weighted_dsm_loss)(GaussianNoiseModel(1.0), SDE, x0, getkey())
    expected = jax.jit(lambda t: 2.0 * jnp.mean(marginal(SDE, t)[0] ** 2))(jnp.linspace(1e-3, 1.0, 10_001))
    checks.assert_close(got, expected, call="weighted_dsm_loss(exact model, N(0, I) data)", rtol=0.05)


# --- Exercise 4: reverse_sde_step ----------------------------------------------------------


@pytest.mark.exercise("reverse_sde_step")
def test_reverse_step_follows_the_update_rule(submission, getkey):
    model, x, key = LinearNoiseModel(getkey()), jax.random.normal(getkey(), (2,)), getkey()
    t, dt = 0.6, 0.01
    beta = SDE.beta_min + t * (SDE.beta_max - SDE.beta_min)
    score = -model(x, t) / marginal(SDE, t)[1]
    z = jax.random.normal(key, (2,))
    expected = x + (0.5 * beta * x + beta * score) * dt + jnp.sqrt(beta * dt) * z
    got = eqx.filter_jit(submission.reverse_sde_step)(model, SDE, x, t, dt, key)
    checks.assert_close(got, expected, call="reverse_sde_step(model, sde, x, 0.6, 0.01, key)", rtol=1e-4)


# --- Exercise 5: euler_maruyama_sampler ----------------------------------------------------


@pytest.mark.exercise("euler_maruyama_sampler")
def test_sampler_equals_a_python_loop(submission, getkey):
    model, x1, key = LinearNoiseModel(getkey()), jax.random.normal(getkey(), (3, 2)), getkey()
    times = jnp.linspace(1.0, 0.01, 5)
    step = eqx.filter_jit(jax.vmap(submission.reverse_sde_step, in_axes=(None, None, 0, None, None, 0)))
    x = x1
    for k, step_key in enumerate(jax.random.split(key, 4)):
        x = step(model, SDE, x, times[k], times[k] - times[k + 1], jax.random.split(step_key, 3))
    got = eqx.filter_jit(submission.euler_maruyama_sampler)(model, SDE, x1, key, 4, 0.01)
    checks.assert_close(got, x, call="euler_maruyama_sampler(model, sde, x1, key, 4, t_min=0.01)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("euler_maruyama_sampler")
def test_sampler_turns_noise_into_gaussian_data(submission, getkey):
    # With the exact score of data N(0, 0.5^2 I), noise x1 ~ N(0, I) must end with std 0.5.
    x1 = jax.random.normal(getkey(), (4000, 2))
    sampler = eqx.filter_jit(submission.euler_maruyama_sampler)
    samples = sampler(GaussianNoiseModel(0.5), SDE, x1, getkey(), 100)
    call = "euler_maruyama_sampler(exact model of N(0, 0.25 I) data, ..., num_steps=100)"
    checks.assert_close(samples.mean(0), jnp.zeros(2), call=f"mean of {call}", atol=0.05)
    checks.assert_close(samples.std(0), jnp.full(2, 0.5), call=f"std of {call}", atol=0.04)


# --- Exercise 6: probability_flow_drift ----------------------------------------------------


@pytest.mark.exercise("probability_flow_drift")
def test_drift_follows_the_formula(submission, getkey):
    model, x = LinearNoiseModel(getkey()), jax.random.normal(getkey(), (2,))
    t = 0.4
    beta = SDE.beta_min + t * (SDE.beta_max - SDE.beta_min)
    score = -model(x, t) / marginal(SDE, t)[1]
    got = eqx.filter_jit(submission.probability_flow_drift)(model, SDE, t, x)
    checks.assert_close(got, -0.5 * beta * x - 0.5 * beta * score,
                        call="probability_flow_drift(model, sde, 0.4, x)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("probability_flow_drift")
def test_drift_vanishes_for_standard_normal_data(submission, getkey):
    x, t = jax.random.normal(getkey(), (8, 2)), jax.random.uniform(getkey(), (8,), minval=0.01)
    drift = jax.vmap(submission.probability_flow_drift, in_axes=(None, None, 0, 0))
    got = eqx.filter_jit(drift)(GaussianNoiseModel(1.0), SDE, t, x)
    checks.assert_close(got, jnp.zeros((8, 2)), call="probability_flow_drift(exact model of N(0, I) data)",
                        atol=1e-4)


# --- Exercise 7: solve_probability_flow ----------------------------------------------------


def solve_with_arrays(submission, model, x1, t_min, tol):
    """Solve with t_min and the tolerances as arrays: one trace serves every call (fast)."""
    solve = eqx.filter_jit(submission.solve_probability_flow)
    return solve(model, SDE, x1, t_min=jnp.float32(t_min), rtol=jnp.float32(tol), atol=jnp.float32(tol))


@pytest.mark.exercise("solve_probability_flow")
def test_flow_leaves_standard_normal_samples_in_place(submission, getkey):
    x1 = jax.random.normal(getkey(), (16, 2))
    solution = solve_with_arrays(submission, GaussianNoiseModel(1.0), x1, 1e-3, 1e-4)
    if not isinstance(solution, diffrax.Solution):
        checks.fail(f"solve_probability_flow returned a {type(solution).__name__}, expected the "
                    "diffrax.Solution that diffrax.diffeqsolve returns.")
    call = "solve_probability_flow(exact model of N(0, I) data, sde, x1, t_min=1e-3)"
    checks.assert_close(solution.ts, jnp.array([1e-3]), call=f"{call}.ts (SaveAt(t1=True), t1=t_min)")
    checks.assert_close(solution.ys, x1[None], call=f"{call}.ys (one state of shape (n, d))", atol=1e-4)


@pytest.mark.exercise("solve_probability_flow")
@pytest.mark.parametrize("t_min", [1e-3, 0.2])
def test_flow_maps_noise_to_gaussian_data_exactly(submission, getkey, t_min):
    # For data N(0, s^2 I) the flow scales every point by sqrt(v(t) / v(1)),
    # with v(t) = m(t)^2 s^2 + std(t)^2 the variance of p_t.
    x1 = jax.random.normal(getkey(), (16, 2))
    solution = solve_with_arrays(submission, GaussianNoiseModel(0.5), x1, t_min, 1e-5)
    variance = lambda t: marginal(SDE, t)[0] ** 2 * 0.25 + marginal(SDE, t)[1] ** 2
    expected = x1 * jnp.sqrt(variance(t_min) / variance(1.0))
    checks.assert_close(solution.ys[-1], expected, rtol=1e-3, atol=1e-4,
                        call=f"solve_probability_flow(exact model of N(0, 0.25 I) data, t_min={t_min}).ys[-1]")


@pytest.mark.exercise("solve_probability_flow")
def test_flow_uses_the_tolerances(submission, getkey):
    x1 = jax.random.normal(getkey(), (16, 2))
    steps = {tol: int(solve_with_arrays(submission, GaussianNoiseModel(0.5), x1, 1e-3, tol).stats["num_steps"])
             for tol in (1e-2, 1e-6)}
    if not steps[1e-6] > steps[1e-2]:
        checks.fail(f"solve_probability_flow took {steps[1e-6]} steps with rtol = atol = 1e-6 and "
                    f"{steps[1e-2]} with 1e-2: pass rtol and atol to diffrax.PIDController.")
