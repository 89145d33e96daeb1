"""Visible tests for 04_reconstruction.py.

Run them with `uv run pytest exercises/astro/test_04_reconstruction.py`
(add `--exercise deconvolve` to check a single exercise).

Several tests use an *oracle*: when every image is the same image `c`, the noise in x_t is known
exactly, eps = (x_t - sqrt(abar) c) / sqrt(1 - abar), and the denoised estimate is always `c`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.data.galaxies import convolve_psf
from course.schedules import DDPMSchedule
from grader import checks
from grader.inputs import normals

SCHEDULE = jax.jit(lambda: DDPMSchedule.cosine(num_steps=60))()
CENTRE = np.abs(np.random.default_rng(2).normal(size=(1, 6, 6))).astype(np.float32)
KERNEL = np.array([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]], dtype=np.float32)


def oracle(x, t, label=None):
    alpha_bar = SCHEDULE.alpha_bars[t]
    return (x - jnp.sqrt(alpha_bar) * CENTRE) / jnp.sqrt(1.0 - alpha_bar)


def blur(images):
    return jax.vmap(lambda image: convolve_psf(image, KERNEL))(images)


@pytest.mark.exercise("tweedie_denoise")
def test_tweedie_with_the_oracle_recovers_the_image(submission, rng):
    y = CENTRE[None] + 0.3 * normals(rng, 4, 1, 6, 6)
    got = submission.tweedie_denoise(oracle, SCHEDULE, y, 0.3)
    checks.assert_close(got, np.repeat(CENTRE[None], 4, axis=0), call="tweedie_denoise(oracle, schedule, y, 0.3)",
                        rtol=1e-3, atol=1e-3)


@pytest.mark.exercise("tweedie_denoise")
def test_tweedie_with_a_model_that_sees_no_noise_returns_y(submission, rng):
    zero = lambda x, t, label=None: jnp.zeros_like(x)
    y = normals(rng, 3, 1, 6, 6)
    got = submission.tweedie_denoise(zero, SCHEDULE, y, 0.2)
    checks.assert_close(got, y, call="tweedie_denoise(model predicting 0, schedule, y, 0.2)", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("likelihood_score")
def test_likelihood_score_is_the_scaled_residual_pulled_back(submission, rng):
    x0, y = normals(rng, 2, 3, 1, 6, 6)
    t, sigma_y = 25, 0.1
    prior = submission.PRIOR_VARIANCE
    alpha_bar = float(SCHEDULE.alpha_bars[t])
    level = (1 - alpha_bar) / alpha_bar
    variance = sigma_y**2 + prior * level / (prior + level)
    gain = np.sqrt(alpha_bar) * prior / (alpha_bar * prior + 1 - alpha_bar)
    residual = y - np.asarray(blur(x0))
    pulled_back = np.asarray(jax.vmap(lambda r: convolve_psf(r, KERNEL[::-1, ::-1]))(residual))  # A^T r
    expected = (gain * pulled_back / variance).astype(np.float32)
    got = jax.jit(submission.likelihood_score, static_argnums=(4,))(SCHEDULE, x0, t, y, blur, sigma_y)
    checks.assert_close(got, expected, call="likelihood_score(schedule, x0_hat, 25, y, blur, 0.1)", rtol=1e-3,
                        atol=1e-4)


@pytest.mark.exercise("deconvolve")
def test_deconvolving_noiseless_data_with_the_oracle_returns_the_image(submission, getkey):
    y = blur(np.repeat(CENTRE[None], 3, axis=0))
    got = submission.deconvolve(oracle, SCHEDULE, y, blur, 0.05, getkey(), num_steps=5)
    checks.assert_close(got, np.repeat(CENTRE[None], 3, axis=0), rtol=1e-3, atol=1e-3,
                        call="deconvolve(oracle, schedule, blur(c), blur, 0.05, key, num_steps=5)")
