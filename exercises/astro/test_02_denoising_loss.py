"""Visible tests for 02_denoising_loss.py.

Run them with `uv run pytest exercises/astro/test_02_denoising_loss.py`
(add `--exercise denoising_loss` to check a single exercise).

The tests use *oracles*: when every image is the same image `c`, the noise in
x_t = sqrt(abar) c + sqrt(1 - abar) eps is known exactly, eps = (x_t - sqrt(abar) c) / sqrt(1 - abar).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.schedules import DDPMSchedule
from grader import checks

SCHEDULE = jax.jit(lambda: DDPMSchedule.cosine(num_steps=50))()
IMAGES = np.random.default_rng(0).normal(size=(2, 1, 6, 6)).astype(np.float32)  # one image per class


def oracle(x, t, label=0):
    """The exact noise of an image noised from IMAGES[label]."""
    alpha_bar = SCHEDULE.alpha_bars[t]
    return (x - jnp.sqrt(alpha_bar) * jnp.asarray(IMAGES)[label]) / jnp.sqrt(1.0 - alpha_bar)


class UnlabelledOracle:
    """Knows the noise only when it is told "no label" (label 2); otherwise predicts 0."""

    num_classes = 2

    def __init__(self, image_label):
        self.image_label = image_label

    def __call__(self, x, t, label):
        return jnp.where(label == self.num_classes, oracle(x, t, self.image_label), 0.0)


@pytest.mark.exercise("denoising_loss")
def test_loss_of_the_oracle_is_zero(submission, getkey):
    images = np.repeat(IMAGES[:1], 32, axis=0)
    loss = jax.jit(submission.denoising_loss, static_argnums=0)(oracle, SCHEDULE, images, getkey())
    checks.assert_close(loss, np.float32(0.0), call="denoising_loss(oracle, ...)", atol=1e-4)


@pytest.mark.exercise("denoising_loss")
def test_loss_of_a_zero_model_is_about_one(submission, rng, getkey):
    zero_model = lambda x, t: jnp.zeros_like(x)
    images = rng.normal(size=(512, 1, 4, 4)).astype(np.float32)
    loss = jax.jit(submission.denoising_loss, static_argnums=0)(zero_model, SCHEDULE, images, getkey())
    checks.assert_close(loss, np.float32(1.0), call="denoising_loss(model predicting 0, ...) = E[eps^2]", atol=0.05)


@pytest.mark.exercise("conditional_denoising_loss")
def test_labels_reach_the_model(submission, getkey):
    images = np.concatenate([np.repeat(IMAGES[:1], 16, axis=0), np.repeat(IMAGES[1:], 16, axis=0)])
    labels = np.repeat(np.array([0, 1], dtype=np.int32), 16)
    labelled_oracle = lambda x, t, label: oracle(x, t, label)
    labelled_oracle.num_classes = 2
    loss = jax.jit(submission.conditional_denoising_loss, static_argnums=(0, 5))(
        labelled_oracle, SCHEDULE, images, labels, getkey(), 0.0
    )
    checks.assert_close(loss, np.float32(0.0), call="conditional_denoising_loss(oracle, ..., drop_probability=0)",
                        atol=1e-4)


@pytest.mark.exercise("conditional_denoising_loss")
def test_dropped_labels_become_the_no_label_class(submission, getkey):
    images = np.repeat(IMAGES[1:], 64, axis=0)
    labels = np.ones(64, dtype=np.int32)
    loss = jax.jit(submission.conditional_denoising_loss, static_argnums=(0, 5))
    always = loss(UnlabelledOracle(1), SCHEDULE, images, labels, getkey(), 1.0)
    checks.assert_close(always, np.float32(0.0), atol=1e-4,
                        call="conditional_denoising_loss(..., drop_probability=1) with a model exact for label 2")
    never = loss(UnlabelledOracle(1), SCHEDULE, images, labels, getkey(), 0.0)
    checks.assert_close(never, np.float32(1.0), atol=0.15,
                        call="conditional_denoising_loss(..., drop_probability=0) with a model that predicts 0 "
                             "for labels 0 and 1")
