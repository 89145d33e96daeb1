"""Hidden tests for 04_reconstruction.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from course.data.galaxies import convolve_psf
from grader import checks
from grader.inputs import normals, random_cosine_schedule, tiny_unet


def random_blur(rng):
    kernel = rng.random((3, 3)).astype(np.float32)
    kernel /= kernel.sum()
    return jax.jit(jax.vmap(lambda image: convolve_psf(image, kernel)))


@pytest.mark.exercise("tweedie_denoise")
@pytest.mark.points(2)
def test_tweedie_denoise_matches_reference(submission, reference, rng):
    schedule, model = random_cosine_schedule(rng, 40), tiny_unet(rng)
    y = normals(rng, 3, 1, 8, 8)
    sigma = float(rng.uniform(0.05, 2.0))
    got = submission.tweedie_denoise(model, schedule, y, sigma)
    expected = reference.tweedie_denoise(model, schedule, y, sigma)
    checks.assert_close(got, expected, call=f"tweedie_denoise(unet, schedule, y, {sigma:.3f})", rtol=1e-3, atol=1e-4)


@pytest.mark.exercise("likelihood_score")
@pytest.mark.points(3)
def test_likelihood_score_matches_reference(submission, reference, rng):
    schedule, blur = random_cosine_schedule(rng, 40), random_blur(rng)
    x0, y = normals(rng, 2, 3, 1, 8, 8)
    sigma_y = float(rng.uniform(0.01, 0.3))
    for t in rng.integers(0, schedule.num_steps, size=3):
        t = np.int32(t)
        call = f"likelihood_score(schedule, x0_hat, {t}, y, blur, {sigma_y:.3f})"
        got = submission.evaluate(checks.jitted, submission.likelihood_score, schedule, x0, t, y, blur, sigma_y,
                                  call=call, static_argnums=(4, 5))
        expected = jax.jit(reference.likelihood_score, static_argnums=(4, 5))(schedule, x0, t, y, blur, sigma_y)
        checks.assert_close(got, expected, call=call, rtol=1e-3, atol=1e-5)


@pytest.mark.exercise("deconvolve")
@pytest.mark.points(4)
def test_deconvolve_matches_reference(submission, reference, rng, getkey):
    schedule, model, blur = random_cosine_schedule(rng, 40), tiny_unet(rng), random_blur(rng)
    y = blur(normals(rng, 2, 1, 8, 8))
    key = getkey()
    run = lambda fn: fn(model, schedule, y, blur, 0.1, key, num_steps=4, eta=0.7)
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(run, submission.deconvolve, call="deconvolve"))
    checks.assert_close(got, run(reference.deconvolve), call="deconvolve(unet, ..., num_steps=4, eta=0.7)",
                        rtol=1e-3, atol=1e-4)
