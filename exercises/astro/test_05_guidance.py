"""Visible tests for 05_guidance.py.

Run them with `uv run pytest exercises/astro/test_05_guidance.py`
(add `--exercise concentration` to check a single exercise).

The guidance tests use a *fake model* whose predictions are known: `x + 10` without a label
(`None`) and `x * (y + 2)` with the label `y`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def fake_model(x, t, y=None):
    if y is None:
        return x + 10.0
    return x * (y + 2.0)


def expected_guidance(x, y, w):
    unconditional, conditional = x + 10.0, x * (y + 2.0)
    return (unconditional + w * (conditional - unconditional)).astype(np.float32)


@pytest.mark.exercise("ClassifierFreeGuidance")
@pytest.mark.parametrize("w", [0.0, 1.0, 3.0])
def test_guidance_mixes_the_conditional_and_unconditional_noise(submission, rng, w):
    x = normals(rng, 1, 4, 4)
    got = submission.ClassifierFreeGuidance(fake_model, w)(x, jnp.asarray(7), jnp.asarray(1))
    name = {0.0: "the unconditional noise", 1.0: "the conditional noise", 3.0: "eps_u + 3 (eps_c - eps_u)"}[w]
    checks.assert_close(got, expected_guidance(x, 1, w), rtol=1e-5, atol=1e-5,
                        call=f"ClassifierFreeGuidance(model, {w})(x, t, y=1) (expected {name})")


@pytest.mark.exercise("ClassifierFreeGuidance")
def test_guidance_uses_each_image_label_under_vmap_and_jit(submission, rng):
    x = normals(rng, 3, 1, 4, 4)
    labels = jnp.array([0, 1, 0])
    guided = submission.ClassifierFreeGuidance(fake_model, 2.0)
    batched = eqx.filter_jit(lambda model, *args: jax.vmap(model, in_axes=(0, None, 0))(*args))
    got = batched(guided, x, jnp.asarray(5), labels)
    expected = expected_guidance(x, np.array([0, 1, 0])[:, None, None, None], 2.0)
    checks.assert_close(got, expected, rtol=1e-5, atol=1e-5,
                        call="jit(vmap(ClassifierFreeGuidance(model, 2.0)))(x, t, labels=[0, 1, 0])")


def exponential_disk(scale, size=48, centre=(23.7, 24.2)):
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    radius = np.hypot(rows - centre[0], cols - centre[1])
    return np.exp(-radius / scale)[None].astype(np.float32)


def gaussian_blob(sigma, size=32):
    centre = (size / 2 - 0.8, size / 2 + 0.4)
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    return np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))[None].astype(np.float32)


@pytest.mark.exercise("concentration")
def test_concentration_of_a_gaussian_and_an_exponential_disk(submission):
    # Light within r: 1 - exp(-r^2 / 2 sigma^2) for a Gaussian; 1 - (1 + r/h) exp(-r/h) for a disk.
    gaussian = np.float32(5 * np.log10(np.sqrt(np.log(0.2) / np.log(0.8))))
    checks.assert_close(submission.concentration(gaussian_blob(6.0, size=64)), gaussian, rtol=0.04,
                        call=f"concentration(round Gaussian) (expected 5 log10(r80 / r20) = {gaussian:.3f})")
    disk = np.float32(5 * np.log10(2.9943 / 0.8244))
    checks.assert_close(submission.concentration(exponential_disk(3.0)), disk, rtol=0.05,
                        call=f"concentration(exponential disk) (expected {disk:.3f})")


@pytest.mark.exercise("concentration")
def test_concentration_ignores_brightness_and_works_under_vmap(submission):
    images = np.stack([gaussian_blob(2.0), 7.0 * gaussian_blob(2.0), exponential_disk(2.5)[:, 8:40, 8:40]])
    got = jax.jit(jax.vmap(submission.concentration))(images)
    checks.assert_close(got[1], got[0], rtol=1e-4, call="concentration(7 * image) (expected concentration(image))")
    if not got[2] > got[0]:
        checks.fail(f"concentration: an exponential disk ({float(got[2]):.2f}) should be more concentrated than "
                    f"a Gaussian ({float(got[0]):.2f}).")
