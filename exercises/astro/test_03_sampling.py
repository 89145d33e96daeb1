"""Visible tests for 03_sampling.py.

Run them with `uv run pytest exercises/astro/test_03_sampling.py`
(add `--exercise ddim_step` to check a single exercise).

Several tests use an *oracle*: when every image is the same image `c`, the noise in x_t is known
exactly, eps = (x_t - sqrt(abar) c) / sqrt(1 - abar), and every sampler must return `c`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.schedules import DDPMSchedule
from grader import checks
from grader.inputs import normals

SCHEDULE = jax.jit(lambda: DDPMSchedule.cosine(num_steps=60))()
CENTRE = np.random.default_rng(1).normal(size=(1, 4, 4)).astype(np.float32)


def oracle(x, t, label=None):
    alpha_bar = SCHEDULE.alpha_bars[t]
    return (x - jnp.sqrt(alpha_bar) * CENTRE) / jnp.sqrt(1.0 - alpha_bar)


@pytest.mark.exercise("predict_x0")
def test_predict_x0_undoes_the_forward_noise(submission, rng):
    x0, eps = normals(rng, 2, 3, 1, 4, 4)
    for t in (0, 30, 59):
        a = float(SCHEDULE.alpha_bars[t])
        x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * eps
        got = jax.jit(submission.predict_x0)(SCHEDULE, x_t, t, eps)
        checks.assert_close(got, x0, call=f"predict_x0(schedule, x_t, {t}, eps) with the true eps", rtol=1e-3,
                            atol=1e-4)


@pytest.mark.exercise("ddim_step")
def test_deterministic_step_with_the_oracle_lands_on_the_forward_marginal(submission, rng):
    eps = normals(rng, 1, 4, 4)
    t, s = 50, 20
    a_t, a_s = float(SCHEDULE.alpha_bars[t]), float(SCHEDULE.alpha_bars[s])
    x_t = np.sqrt(a_t) * CENTRE + np.sqrt(1 - a_t) * eps
    got = jax.jit(submission.ddim_step)(SCHEDULE, x_t, t, s, oracle(x_t, t), np.zeros_like(eps), 0.0)
    expected = (np.sqrt(a_s) * CENTRE + np.sqrt(1 - a_s) * eps).astype(np.float32)
    checks.assert_close(got, expected, call=f"ddim_step(schedule, x_t, {t}, {s}, eps, z, eta=0)", rtol=1e-4, atol=1e-5)
    last = jax.jit(submission.ddim_step)(SCHEDULE, x_t, t, -1, oracle(x_t, t), normals(rng, 1, 4, 4), 1.0)
    checks.assert_close(last, CENTRE, call=f"ddim_step(schedule, x_t, {t}, -1, eps, z, eta=1) (to the clean image)",
                        rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("ddim_step")
def test_eta_one_one_step_back_is_the_ancestral_step(submission, rng):
    x_t, eps, z = normals(rng, 3, 1, 4, 4)
    t = 40
    beta, alpha = float(SCHEDULE.betas[t]), float(SCHEDULE.alphas[t])
    a_t, a_s = float(SCHEDULE.alpha_bars[t]), float(SCHEDULE.alpha_bars[t - 1])
    mean = (x_t - beta / np.sqrt(1 - a_t) * eps) / np.sqrt(alpha)
    std = np.sqrt(beta * (1 - a_s) / (1 - a_t))  # Ho et al.'s posterior variance
    got = jax.jit(submission.ddim_step)(SCHEDULE, x_t, t, t - 1, eps, z, 1.0)
    checks.assert_close(got, (mean + std * z).astype(np.float32), call=f"ddim_step(schedule, x_t, {t}, {t - 1}, eps, z, eta=1)",
                        rtol=1e-3, atol=1e-4)


@pytest.mark.exercise("sample")
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_sampling_with_the_oracle_returns_the_data(submission, getkey, eta):
    got = submission.sample(oracle, SCHEDULE, getkey(), 5, num_steps=6, eta=eta, image_shape=(1, 4, 4))
    checks.assert_close(got, np.repeat(CENTRE[None], 5, axis=0), rtol=1e-3, atol=1e-3,
                        call=f"sample(oracle, schedule, key, 5, num_steps=6, eta={eta}, image_shape=(1, 4, 4))")


@pytest.mark.exercise("sample")
def test_sampling_starts_from_noise_drawn_with_the_key(submission, getkey):
    zero = lambda x, t, label=None: jnp.zeros_like(x)
    draw = lambda key: submission.sample(zero, SCHEDULE, key, 3, num_steps=4, image_shape=(1, 2, 2))
    checks.assert_different(draw(getkey()), draw(getkey()), call="sample",
                            why="two different keys gave the same images; draw the starting noise from `key`.")
