"""Hidden tests for 01_galaxies_and_noising.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals, random_cosine_schedule


@pytest.mark.exercise("forward_noise")
@pytest.mark.points(2)
def test_forward_noise_matches_reference(submission, reference, rng):
    schedule = random_cosine_schedule(rng, 30)
    images, noise = normals(rng, 2, 6, 1, 8, 8)
    t = rng.integers(0, schedule.num_steps, size=6).astype(np.int32)
    got = submission.evaluate(lambda: checks.jitted(submission.forward_noise, schedule, images, t, noise,
                                                    call="jit(forward_noise)"))
    expected = jax.jit(reference.forward_noise)(schedule, images, t, noise)
    checks.assert_close(got, expected, call="forward_noise on 6 random 8x8 images and steps")


@pytest.mark.exercise("forward_noise")
@pytest.mark.points(1)
def test_forward_noise_works_for_several_channels(submission, reference, rng):
    schedule = random_cosine_schedule(rng, 30)
    images, noise = normals(rng, 2, 3, 2, 4, 6)
    t = rng.integers(0, schedule.num_steps, size=3).astype(np.int32)
    got = submission.evaluate(lambda: checks.jitted(submission.forward_noise, schedule, images, t, noise,
                                                    call="jit(forward_noise)"))
    expected = jax.jit(reference.forward_noise)(schedule, images, t, noise)
    checks.assert_close(got, expected, call="forward_noise on 3 two-channel 4x6 images")


@pytest.mark.exercise("noise_level")
@pytest.mark.points(2)
def test_noise_level_matches_reference(submission, reference, rng):
    schedule = random_cosine_schedule(rng, 30)
    t = rng.integers(0, schedule.num_steps, size=(3, 5)).astype(np.int32)
    got = submission.evaluate(lambda: checks.jitted(submission.noise_level, schedule, t, call="jit(noise_level)"))
    expected = jax.jit(reference.noise_level)(schedule, t)
    checks.assert_close(got, expected, call="noise_level(schedule, t) for t of shape (3, 5)", rtol=1e-5)


@pytest.mark.exercise("matching_step")
@pytest.mark.points(2)
def test_matching_step_matches_reference(submission, reference, rng):
    schedule = random_cosine_schedule(rng, 30)
    sigmas = np.exp(rng.uniform(-6, 4, size=20)).astype(np.float32)
    sigmas[0] = 1e6  # beyond the noisiest step: T - 1
    got = submission.evaluate(lambda: checks.jitted(submission.matching_step, schedule, sigmas,
                                                    call="jit(matching_step)"))
    expected = jax.jit(reference.matching_step)(schedule, sigmas)
    checks.assert_close(np.asarray(got), np.asarray(expected), call="matching_step on 20 noise levels from 0.002 to 55")
