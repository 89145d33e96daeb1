"""Hidden tests for 02_denoising_loss.py: the student's functions against the reference."""

import equinox as eqx
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals, random_cosine_schedule, tiny_unet


def images_and_labels(rng, n=16):
    return normals(rng, n, 1, 8, 8), rng.integers(0, 2, size=n).astype(np.int32)


@pytest.mark.exercise("denoising_loss")
@pytest.mark.points(2)
def test_denoising_loss_matches_reference(submission, reference, rng, getkey):
    schedule, model = random_cosine_schedule(rng, 20), tiny_unet(rng)
    images, _ = images_and_labels(rng)
    key = getkey()
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(
        eqx.filter_jit(submission.denoising_loss), model, schedule, images, key, call="denoising_loss"))
    expected = eqx.filter_jit(reference.denoising_loss)(model, schedule, images, key)
    checks.assert_close(got, expected, call="denoising_loss(unet, schedule, images, key)", rtol=1e-4)


@pytest.mark.exercise("denoising_loss")
@pytest.mark.points(2)
def test_denoising_loss_gradients_match_reference(submission, reference, rng, getkey):
    schedule, model = random_cosine_schedule(rng, 20), tiny_unet(rng)
    images, _ = images_and_labels(rng)
    key = getkey()
    grad_of = lambda loss: eqx.filter_jit(eqx.filter_grad(loss))(model, schedule, images, key)
    checks.assert_close(submission.evaluate(grad_of, submission.denoising_loss), grad_of(reference.denoising_loss),
                        call="gradient of denoising_loss w.r.t. the UNet", rtol=1e-3, atol=1e-5)


@pytest.mark.exercise("denoising_loss")
@pytest.mark.points(1)
def test_denoising_loss_uses_the_key(submission, rng, getkey):
    schedule, model = random_cosine_schedule(rng, 20), tiny_unet(rng)
    images, _ = images_and_labels(rng)
    keys = getkey(), getkey()
    loss = lambda key: eqx.filter_jit(submission.denoising_loss)(model, schedule, images, key)
    checks.assert_different(*submission.evaluate(lambda: [loss(key) for key in keys]),
                            call="denoising_loss",
                            why="two different keys gave the same loss; draw t and the noise from `key`.")


@pytest.mark.exercise("conditional_denoising_loss")
@pytest.mark.points(3)
@pytest.mark.parametrize("drop_probability", [0.0, 0.5, 1.0])
def test_conditional_loss_matches_reference(submission, reference, rng, getkey, drop_probability):
    schedule, model = random_cosine_schedule(rng, 20), tiny_unet(rng, num_classes=2)
    images, labels = images_and_labels(rng)
    key = getkey()
    loss = lambda fn: eqx.filter_jit(fn)(model, schedule, images, labels, key, drop_probability)
    got = submission.evaluate(lambda: checks.assert_no_key_reuse(loss, submission.conditional_denoising_loss,
                                                                 call="conditional_denoising_loss"))
    checks.assert_close(got, loss(reference.conditional_denoising_loss), rtol=1e-4,
                        call=f"conditional_denoising_loss(..., drop_probability={drop_probability})")


@pytest.mark.exercise("conditional_denoising_loss")
@pytest.mark.points(1)
def test_conditional_loss_gradients_match_reference(submission, reference, rng, getkey):
    schedule, model = random_cosine_schedule(rng, 20), tiny_unet(rng, num_classes=2)
    images, labels = images_and_labels(rng)
    key = getkey()
    grad_of = lambda loss: eqx.filter_jit(eqx.filter_grad(loss))(model, schedule, images, labels, key, 0.3)
    checks.assert_close(submission.evaluate(grad_of, submission.conditional_denoising_loss),
                        grad_of(reference.conditional_denoising_loss),
                        call="gradient of conditional_denoising_loss w.r.t. the UNet", rtol=1e-3, atol=1e-5)
