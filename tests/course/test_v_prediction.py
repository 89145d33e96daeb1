import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

from course.nn.v_prediction import VPredictionModel
from course.schedules import DDPMSchedule

SCHEDULE = DDPMSchedule.cosine(100)
SCALE = 8.0


def unused_network(x, t, y=None):
    raise AssertionError("only the scaling is used here")


@pytest.fixture
def clean_and_noise(rng):
    return rng.normal(size=(1, 6, 6)).astype(np.float32) * 0.1, rng.normal(size=(1, 6, 6)).astype(np.float32)


@pytest.mark.parametrize("t", [0, 40, 99])
def test_the_network_sees_the_scaled_image_at_unit_variance(clean_and_noise, t):
    x0, noise = clean_and_noise
    model = VPredictionModel(unused_network, SCHEDULE.alpha_bars, SCALE)
    alpha_bar = float(SCHEDULE.alpha_bars[t])
    x_t = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * noise
    # Noise level sqrt((1 - a) / a) times SCALE, in variance-preserving form.
    level = SCALE * np.sqrt((1 - alpha_bar) / alpha_bar)
    scaled = 1.0 / (1.0 + level**2)
    np.testing.assert_allclose(model.scaled_alpha_bar(t)[1], scaled, rtol=1e-5)
    expected = np.sqrt(scaled) * SCALE * x0 + np.sqrt(1 - scaled) * noise
    np.testing.assert_allclose(model.network_input(x_t, t), expected, rtol=1e-4, atol=1e-5)


PER_PIXEL_SCALE = jnp.linspace(1.0, 20.0, 36).reshape(1, 6, 6)


@pytest.mark.parametrize("scale", [SCALE, PER_PIXEL_SCALE], ids=["one scale", "per pixel"])
@pytest.mark.parametrize("t", [0, 40, 99])
def test_a_network_that_predicts_v_exactly_gives_the_exact_noise(clean_and_noise, t, scale):
    x0, noise = clean_and_noise
    alpha_bar = SCHEDULE.alpha_bars[t]
    x_t = jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1 - alpha_bar) * noise
    oracle = VPredictionModel(unused_network, SCHEDULE.alpha_bars, scale)
    model = VPredictionModel(lambda x, t, y: oracle.v_target(x0, noise, t), SCHEDULE.alpha_bars, scale)
    np.testing.assert_allclose(model(x_t, jnp.asarray(t)), noise, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(eqx.filter_jit(model)(x_t, jnp.asarray(float(t))), noise, rtol=1e-3, atol=1e-3)


def test_a_per_pixel_scale_treats_each_pixel_as_one_scale_would(clean_and_noise):
    x0, noise = clean_and_noise
    t = 40
    alpha_bar = SCHEDULE.alpha_bars[t]
    x_t = jnp.sqrt(alpha_bar) * x0 + jnp.sqrt(1 - alpha_bar) * noise
    per_pixel = VPredictionModel(unused_network, SCHEDULE.alpha_bars, PER_PIXEL_SCALE)
    for row, col in [(0, 0), (2, 3), (5, 5)]:
        one = VPredictionModel(unused_network, SCHEDULE.alpha_bars, float(PER_PIXEL_SCALE[0, row, col]))
        for method, args in [("network_input", (x_t, t)), ("v_target", (x0, noise, t))]:
            np.testing.assert_allclose(getattr(per_pixel, method)(*args)[0, row, col],
                                       getattr(one, method)(*args)[0, row, col], rtol=1e-5, atol=1e-6)
