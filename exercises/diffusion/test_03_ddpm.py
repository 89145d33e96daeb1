"""Visible tests for 03_ddpm.py.

Run them with `uv run pytest exercises/diffusion/test_03_ddpm.py`
(add `--exercise reverse_step` to check a single exercise).

Several tests use an *oracle*: when all the data sit at one point `c`, the noise in
x_t = sqrt(abar) c + sqrt(1 - abar) eps is known exactly, eps = (x_t - sqrt(abar) c) / sqrt(1 - abar).
"""

import jax
import jax.numpy as jnp
import pytest

from course.schedules import DDPMSchedule
from grader import checks

SCHEDULE = DDPMSchedule.linear(num_steps=50, beta_start=1e-3, beta_end=0.2)
CENTRE = jnp.array([1.5, -0.5])


def oracle(x, t):
    """The exact noise predictor for data concentrated at CENTRE."""
    alpha_bar = SCHEDULE.alpha_bars[t]
    return (x - jnp.sqrt(alpha_bar) * CENTRE) / jnp.sqrt(1.0 - alpha_bar)


@pytest.mark.exercise("forward_noise")
def test_forward_noise_formula(submission, getkey):
    x0, noise = jax.random.normal(getkey(), (2, 2))
    for t in (0, 17, 49):
        alpha_bar = SCHEDULE.alpha_bars[t]
        expected = jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1 - alpha_bar) * noise
        got = jax.jit(submission.forward_noise)(SCHEDULE, x0, t, noise)
        checks.assert_close(got, expected, call=f"forward_noise(schedule, x0, {t}, noise)")


@pytest.mark.exercise("forward_noise")
def test_forward_noise_keeps_unit_variance(submission, getkey):
    """Unit-variance data stay unit-variance at every step (the schedule is variance preserving)."""
    x0, noise = jax.random.normal(getkey(), (2, 20_000, 2))
    noised = jax.jit(jax.vmap(submission.forward_noise, in_axes=(None, 0, None, 0)))(SCHEDULE, x0, 30, noise)
    checks.assert_close(noised.var(0), jnp.ones(2), call="variance of forward_noise at t=30", atol=0.05)


@pytest.mark.exercise("ddpm_loss")
def test_loss_of_the_oracle_is_zero(submission, getkey):
    x0 = jnp.tile(CENTRE, (64, 1))
    loss = jax.jit(submission.ddpm_loss, static_argnums=0)(oracle, SCHEDULE, x0, getkey())
    checks.assert_close(loss, jnp.array(0.0), call="ddpm_loss(oracle, ...)", atol=1e-4)


@pytest.mark.exercise("ddpm_loss")
def test_loss_of_a_zero_model_is_about_one(submission, getkey):
    zero_model = lambda x, t: jnp.zeros_like(x)
    x0 = jax.random.normal(getkey(), (4096, 2))
    loss = jax.jit(submission.ddpm_loss, static_argnums=0)(zero_model, SCHEDULE, x0, getkey())
    checks.assert_close(loss, jnp.array(1.0), call="ddpm_loss(model predicting 0, ...) = E[eps^2]", atol=0.06)


@pytest.mark.exercise("reverse_step")
def test_reverse_step_formula(submission, getkey):
    x, key = jax.random.normal(getkey(), (2,)), getkey()
    t = 20
    beta, alpha, alpha_bar = SCHEDULE.betas[t], SCHEDULE.alphas[t], SCHEDULE.alpha_bars[t]
    mean = (x - beta / jnp.sqrt(1 - alpha_bar) * oracle(x, t)) / jnp.sqrt(alpha)
    expected = mean + jnp.sqrt(beta) * jax.random.normal(key, (2,))
    got = jax.jit(submission.reverse_step, static_argnums=0)(oracle, SCHEDULE, x, t, key)
    checks.assert_close(got, expected, call=f"reverse_step(oracle, schedule, x, {t}, key)", rtol=1e-4)


@pytest.mark.exercise("reverse_step")
def test_last_step_adds_no_noise(submission, getkey):
    x = jax.random.normal(getkey(), (2,))
    step = jax.jit(submission.reverse_step, static_argnums=0)
    first, second = step(oracle, SCHEDULE, x, 0, getkey()), step(oracle, SCHEDULE, x, 0, getkey())
    checks.assert_close(first, second, call="reverse_step at t=0 with two different keys")


@pytest.mark.exercise("ddpm_sample")
def test_sampling_with_the_oracle_finds_the_data(submission, getkey):
    x_T = jax.random.normal(getkey(), (256, 2))
    trajectory = jax.jit(submission.ddpm_sample, static_argnums=0)(oracle, SCHEDULE, x_T, getkey())
    checks.assert_shape(trajectory, (SCHEDULE.num_steps + 1, 256, 2), call="ddpm_sample")
    checks.assert_close(trajectory[0], x_T, call="ddpm_sample(...)[0] (the start)")
    checks.assert_close(trajectory[-1], jnp.broadcast_to(CENTRE, (256, 2)), call="ddpm_sample(oracle)[-1]", atol=1e-3)


@pytest.mark.exercise("ddpm_sample")
def test_sampling_follows_the_key_convention(submission, getkey):
    x_T, key = jax.random.normal(getkey(), (3, 2)), getkey()
    schedule = DDPMSchedule.linear(num_steps=4, beta_start=0.1, beta_end=0.3)
    model = lambda x, t: 0.1 * x

    @jax.jit
    def python_loop(x, key):
        step_keys = jax.random.split(key, 4)
        for t in (3, 2, 1, 0):
            keys = jax.random.split(step_keys[t], 3)
            x = jax.vmap(submission.reverse_step, in_axes=(None, None, 0, None, 0))(model, schedule, x, t, keys)
        return x

    x = python_loop(x_T, key)
    got = jax.jit(submission.ddpm_sample, static_argnums=0)(model, schedule, x_T, key)[-1]
    checks.assert_close(got, x, call="ddpm_sample(...)[-1] vs a loop of reverse_step", rtol=1e-4, atol=1e-5)
