"""Hidden tests for 03_sampling.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals, random_cosine_schedule, tiny_unet


@pytest.mark.exercise("predict_x0")
@pytest.mark.points(2)
def test_predict_x0_matches_reference(submission, reference, rng):
    schedule = random_cosine_schedule(rng, 40)
    x_t, eps = normals(rng, 2, 4, 1, 5, 5)
    for t in rng.integers(0, schedule.num_steps, size=3):
        t = np.int32(t)
        got = submission.evaluate(checks.jitted, submission.predict_x0, schedule, x_t, t, eps, call="jit(predict_x0)")
        expected = jax.jit(reference.predict_x0)(schedule, x_t, t, eps)
        checks.assert_close(got, expected, call=f"predict_x0(schedule, x_t, {t}, eps)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("ddim_step")
@pytest.mark.points(3)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_reference(submission, reference, rng, eta):
    schedule = random_cosine_schedule(rng, 40)
    x_t, eps, z = normals(rng, 3, 3, 1, 4, 4)
    t = np.int32(rng.integers(5, schedule.num_steps))
    for s in (np.int32(rng.integers(0, t)), np.int32(t - 1), np.int32(-1)):
        call = f"ddim_step(schedule, x_t, {t}, {s}, eps, z, eta={eta})"
        got = submission.evaluate(checks.jitted, submission.ddim_step, schedule, x_t, t, s, eps, z, eta, call=call)
        expected = jax.jit(reference.ddim_step)(schedule, x_t, t, s, eps, z, eta)
        checks.assert_close(got, expected, call=call, rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("sample")
@pytest.mark.points(3)
def test_sample_matches_reference(submission, reference, rng, getkey):
    schedule, model, key = random_cosine_schedule(rng, 40), tiny_unet(rng), getkey()
    kwargs = dict(num_steps=4, eta=0.5, image_shape=(1, 8, 8))
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        lambda: submission.sample(model, schedule, key, 3, **kwargs), call="sample"))
    expected = reference.sample(model, schedule, key, 3, **kwargs)
    checks.assert_close(got, expected, call="sample(unet, schedule, key, 3, num_steps=4, eta=0.5)", rtol=1e-3,
                        atol=1e-4)


@pytest.mark.exercise("sample")
@pytest.mark.points(2)
def test_conditional_deterministic_sample_matches_reference(submission, reference, rng, getkey):
    schedule, model, key = random_cosine_schedule(rng, 40), tiny_unet(rng, num_classes=2), getkey()
    labels = np.array([0, 1, 2], dtype=np.int32)
    kwargs = dict(num_steps=3, eta=0.0, labels=labels, image_shape=(1, 8, 8))
    got = submission.sample(model, schedule, key, 3, **kwargs)
    expected = reference.sample(model, schedule, key, 3, **kwargs)
    checks.assert_close(got, expected, call="sample(unet, ..., num_steps=3, eta=0, labels=[0, 1, 2])", rtol=1e-3,
                        atol=1e-4)
