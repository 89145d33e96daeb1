"""Hidden tests for 05_guidance.py: the student's functions against the reference."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals, random_cosine_schedule, tiny_unet


@eqx.filter_jit
def predict_guided(guided, x, t, labels):
    return jax.vmap(guided, in_axes=(0, None, 0))(x, t, labels)


@pytest.mark.exercise("ClassifierFreeGuidance")
@pytest.mark.points(3)
@pytest.mark.parametrize("w", [0.0, 0.7, 4.0])
def test_guided_noise_of_a_unet_matches_reference(submission, reference, rng, w):
    model = tiny_unet(rng, num_classes=2)
    x = normals(rng, 4, 1, 8, 8)
    labels = jnp.asarray(rng.integers(0, 2, size=4), dtype=jnp.int32)
    t = jnp.asarray(rng.integers(0, 1000), dtype=jnp.int32)
    got = submission.evaluate(lambda: predict_guided(submission.ClassifierFreeGuidance(model, w), x, t, labels))
    expected = predict_guided(reference.ClassifierFreeGuidance(model, w), x, t, labels)
    checks.assert_close(got, expected, call=f"vmap(ClassifierFreeGuidance(unet, {w}))(x, {int(t)}, labels)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("ClassifierFreeGuidance")
@pytest.mark.points(1)
def test_guidance_one_is_the_conditional_model(submission, rng):
    model = tiny_unet(rng, num_classes=2)
    x = normals(rng, 3, 1, 8, 8)
    labels, t = jnp.array([1, 0, 1], dtype=jnp.int32), jnp.asarray(300)
    got = submission.evaluate(lambda: predict_guided(submission.ClassifierFreeGuidance(model, 1.0), x, t, labels))
    expected = predict_guided(model, x, t, labels)
    checks.assert_close(got, expected, call="ClassifierFreeGuidance(unet, 1.0) (expected the conditional noise)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("ClassifierFreeGuidance")
@pytest.mark.points(2)
def test_sampling_the_guided_model_matches_reference(submission, reference, rng, getkey):
    schedule, model, key = random_cosine_schedule(rng, 30), tiny_unet(rng, num_classes=2), getkey()
    labels = jnp.array([0, 1, 1], dtype=jnp.int32)
    kwargs = dict(num_steps=3, eta=1.0, labels=labels, image_shape=(1, 8, 8))
    got = submission.evaluate(
        lambda: reference.sample(submission.ClassifierFreeGuidance(model, 2.5), schedule, key, 3, **kwargs))
    expected = reference.sample(reference.ClassifierFreeGuidance(model, 2.5), schedule, key, 3, **kwargs)
    checks.assert_close(got, expected, call="sample(ClassifierFreeGuidance(unet, 2.5), ..., labels=[0, 1, 1])",
                        rtol=1e-3, atol=1e-4)


def random_galaxy_like(rng, size=32):
    """A sum of an exponential disk and a steeper bulge, off centre, with a little noise."""
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    centre = size / 2 + rng.uniform(-2, 2, size=2)
    radius = np.hypot(rows - centre[0], cols - centre[1])
    disk = np.exp(-radius / rng.uniform(1.5, 4.0))
    bulge = np.exp(-((radius / rng.uniform(0.3, 1.0)) ** 0.25) * 3)
    image = rng.uniform(0, 1) * disk / disk.sum() + rng.uniform(0, 1) * bulge / bulge.sum()
    return (image + 1e-4 * rng.normal(size=image.shape))[None].astype(np.float32)


@pytest.mark.exercise("concentration")
@pytest.mark.points(2)
def test_concentration_matches_reference(submission, reference, rng):
    images = np.stack([random_galaxy_like(rng) for _ in range(6)])
    got = submission.evaluate(lambda: jax.jit(jax.vmap(submission.concentration))(images))
    expected = jax.vmap(reference.concentration)(images)
    checks.assert_close(got, expected, call="vmap(concentration)(galaxy-like images)", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("concentration")
@pytest.mark.points(1)
def test_concentration_of_an_exponential_disk(submission):
    rows, cols = np.mgrid[:64, :64].astype(np.float64)
    disk = np.exp(-np.hypot(rows - 31.3, cols - 32.6) / 4.0)[None].astype(np.float32)
    # The light within r of a disk of scale h is 1 - (1 + r/h) exp(-r/h): r20 = 0.8244 h, r80 = 2.9943 h.
    expected = np.float32(5 * np.log10(2.9943 / 0.8244))
    checks.assert_close(submission.concentration(disk), expected, call="concentration(exponential disk)", rtol=0.03)
