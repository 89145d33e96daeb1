"""Visible tests for 01_galaxies_and_noising.py.

Run them with `uv run pytest exercises/astro/test_01_galaxies_and_noising.py`
(add `--exercise noise_level` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.schedules import DDPMSchedule
from grader import checks
from grader.inputs import normals

# Built in one compiled program rather than op by op.
SCHEDULE = jax.jit(lambda: DDPMSchedule.cosine(num_steps=40))()


@pytest.mark.exercise("forward_noise")
def test_forward_noise_formula_image_by_image(submission, rng):
    images, noise = normals(rng, 2, 3, 1, 4, 4)
    t = np.array([0, 17, 39], dtype=np.int32)
    got = jax.jit(submission.forward_noise)(SCHEDULE, images, t, noise)
    alpha_bars = np.asarray(SCHEDULE.alpha_bars)
    for i in range(3):
        a = alpha_bars[t[i]]
        expected = np.sqrt(a) * images[i] + np.sqrt(1 - a) * noise[i]
        checks.assert_close(got[i], expected, call=f"forward_noise(schedule, images, t, noise)[{i}] (t = {t[i]})")


@pytest.mark.exercise("forward_noise")
def test_forward_noise_keeps_unit_variance(submission, rng):
    """Unit-variance images stay unit-variance at every step (the schedule is variance preserving)."""
    images, noise = normals(rng, 2, 4000, 1, 2, 2)
    t = np.full(4000, 25, dtype=np.int32)
    noised = np.asarray(jax.jit(submission.forward_noise)(SCHEDULE, images, t, noise))
    checks.assert_close(noised.var(0), np.ones((1, 2, 2), np.float32), call="variance of forward_noise at t=25",
                        atol=0.08)


@pytest.mark.exercise("noise_level")
def test_noise_level_inverts_the_signal_fraction(submission):
    t = np.arange(40, dtype=np.int32).reshape(4, 10)
    got = np.asarray(jax.jit(submission.noise_level)(SCHEDULE, t))
    checks.assert_shape(got, (4, 10), call="noise_level(schedule, t) for t of shape (4, 10)")
    # sigma_t^2 = (1 - abar) / abar  <=>  abar = 1 / (1 + sigma_t^2)
    checks.assert_close(1.0 / (1.0 + got.astype(np.float64) ** 2), np.asarray(SCHEDULE.alpha_bars, np.float64).reshape(4, 10),
                        call="1 / (1 + noise_level^2), which should equal alpha_bars", rtol=1e-4)


@pytest.mark.exercise("matching_step")
def test_matching_step_finds_the_first_noisy_enough_step(submission):
    levels = np.sqrt((1 - np.asarray(SCHEDULE.alpha_bars, np.float64)) / np.asarray(SCHEDULE.alpha_bars, np.float64))
    sigmas = np.array([0.0, levels[3] * 0.999, levels[3] * 1.001, levels[20], 0.5 * (levels[9] + levels[10]), 1e9],
                      dtype=np.float32)
    # A loop over the steps, as a reference.
    expected = np.array([next((t for t in range(40) if levels[t] >= s), 39) for s in sigmas.astype(np.float64)],
                        dtype=np.int32)
    got = jax.jit(submission.matching_step)(SCHEDULE, sigmas)
    checks.assert_close(np.asarray(got), expected, call=f"matching_step(schedule, {sigmas.tolist()})")
