"""Visible tests for 03_ddpm.py.

Run them with `uv run pytest exercises/diffusion/test_03_ddpm.py`
(add `--exercise reverse_step` to check a single exercise).

Several tests use an *oracle*: when all the data sit at one point `c`, the noise in
x_t = sqrt(abar) c + sqrt(1 - abar) eps is known exactly, eps = (x_t - sqrt(abar) c) / sqrt(1 - abar).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.schedules import DDPMSchedule
from grader import checks
from grader.inputs import normals

# Built in one compiled program rather than op by op.
SCHEDULE = jax.jit(lambda: DDPMSchedule.linear(num_steps=50, beta_start=1e-3, beta_end=0.2))()
CENTRE = np.array([1.5, -0.5], dtype=np.float32)


def oracle(x, t):
    """The exact noise predictor for data concentrated at CENTRE."""
    alpha_bar = SCHEDULE.alpha_bars[t]
    return (x - jnp.sqrt(alpha_bar) * CENTRE) / jnp.sqrt(1.0 - alpha_bar)



@pytest.mark.exercise("forward_noise")
def test_forward_noise_formula(submission, rng):
    x0, noise = normals(rng, 2, 2)
    alpha_bars = np.asarray(SCHEDULE.alpha_bars)
    for t in (0, 17, 49):
        alpha_bar = alpha_bars[t]
        expected = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * noise
        got = jax.jit(submission.forward_noise)(SCHEDULE, x0, t, noise)
        checks.assert_close(got, expected, call=f"forward_noise(schedule, x0, {t}, noise)")


@pytest.mark.exercise("forward_noise")
def test_forward_noise_keeps_unit_variance(submission, rng):
    """Unit-variance data stay unit-variance at every step (the schedule is variance preserving)."""
    x0, noise = normals(rng, 2, 20_000, 2)
    noised = jax.jit(jax.vmap(submission.forward_noise, in_axes=(None, 0, None, 0)))(SCHEDULE, x0, 30, noise)
    checks.assert_close(np.asarray(noised).var(0), np.ones(2, np.float32), call="variance of forward_noise at t=30",
                        atol=0.05)


@pytest.mark.exercise("ddpm_loss")
def test_loss_of_the_oracle_is_zero(submission, getkey):
    x0 = np.tile(CENTRE, (64, 1))
    loss = jax.jit(submission.ddpm_loss, static_argnums=0)(oracle, SCHEDULE, x0, getkey())
    checks.assert_close(loss, np.float32(0.0), call="ddpm_loss(oracle, ...)", atol=1e-4)


@pytest.mark.exercise("ddpm_loss")
def test_loss_of_a_zero_model_is_about_one(submission, rng, getkey):
    zero_model = lambda x, t: jnp.zeros_like(x)
    x0 = normals(rng, 4096, 2)
    loss = jax.jit(submission.ddpm_loss, static_argnums=0)(zero_model, SCHEDULE, x0, getkey())
    checks.assert_close(loss, np.float32(1.0), call="ddpm_loss(model predicting 0, ...) = E[eps^2]", atol=0.06)


@pytest.mark.exercise("reverse_step")
def test_reverse_step_formula(submission, rng, getkey):
    x, key = normals(rng, 2), getkey()
    t = 20

    @jax.jit
    def expected_step(x, key):
        beta, alpha, alpha_bar = SCHEDULE.betas[t], SCHEDULE.alphas[t], SCHEDULE.alpha_bars[t]
        mean = (x - beta / jnp.sqrt(1 - alpha_bar) * oracle(x, t)) / jnp.sqrt(alpha)
        return mean + jnp.sqrt(beta) * jax.random.normal(key, (2,))

    expected = expected_step(x, key)
    got = jax.jit(submission.reverse_step, static_argnums=0)(oracle, SCHEDULE, x, t, key)
    checks.assert_close(got, expected, call=f"reverse_step(oracle, schedule, x, {t}, key)", rtol=1e-4)


@pytest.mark.exercise("reverse_step")
def test_last_step_adds_no_noise(submission, rng, getkey):
    x = normals(rng, 2)
    step = jax.jit(submission.reverse_step, static_argnums=0)
    first, second = step(oracle, SCHEDULE, x, 0, getkey()), step(oracle, SCHEDULE, x, 0, getkey())
    checks.assert_close(first, second, call="reverse_step at t=0 with two different keys")


@pytest.mark.exercise("ddpm_sample")
def test_sampling_with_the_oracle_finds_the_data(submission, rng, getkey):
    x_T = normals(rng, 256, 2)
    trajectory = jax.jit(submission.ddpm_sample, static_argnums=0)(oracle, SCHEDULE, x_T, getkey())
    checks.assert_shape(trajectory, (SCHEDULE.num_steps + 1, 256, 2), call="ddpm_sample")
    trajectory = np.asarray(trajectory)
    checks.assert_close(trajectory[0], x_T, call="ddpm_sample(...)[0] (the start)")
    checks.assert_close(trajectory[-1], np.broadcast_to(CENTRE, (256, 2)), call="ddpm_sample(oracle)[-1]", atol=1e-3)


@pytest.mark.exercise("ddpm_sample")
def test_sampling_follows_the_key_convention(submission, rng, getkey):
    x_T, key = normals(rng, 3, 2), getkey()
    model = lambda x, t: 0.1 * x

    schedule = jax.jit(lambda: DDPMSchedule.linear(num_steps=4, beta_start=0.1, beta_end=0.3))()

    @jax.jit  # one compiled step for every t, not four
    def step(x, key, t):
        keys = jax.random.split(jax.random.split(key, 4)[t], 3)
        return jax.vmap(submission.reverse_step, in_axes=(None, None, 0, None, 0))(model, schedule, x, t, keys)

    x = x_T
    for t in (3, 2, 1, 0):
        x = step(x, key, t)
    got = np.asarray(jax.jit(submission.ddpm_sample, static_argnums=0)(model, schedule, x_T, key))[-1]
    checks.assert_close(got, x, call="ddpm_sample(...)[-1] vs a loop of reverse_step", rtol=1e-4, atol=1e-5)
