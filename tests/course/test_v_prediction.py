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


def a_network(x, t, y=None):
    """Any smooth function of the input and the time, to compare two views of one model."""
    return jnp.tanh(x) * (1.0 + 0.001 * t) - 0.3


@pytest.mark.parametrize("scale", [SCALE, PER_PIXEL_SCALE], ids=["one scale", "per pixel"])
@pytest.mark.parametrize("t", [0, 40, 99])
def test_the_denoiser_at_a_steps_noise_level_agrees_with_the_noise_predictor(clean_and_noise, t, scale):
    x0, noise = clean_and_noise
    model = VPredictionModel(a_network, SCHEDULE.alpha_bars, scale)
    alpha_bar = SCHEDULE.alpha_bars[t]
    sigma = jnp.sqrt((1 - alpha_bar) / alpha_bar)
    x = x0 + sigma * noise
    expected = x - sigma * model(jnp.sqrt(alpha_bar) * x, jnp.asarray(t))
    tolerance = 1e-5 * (1.0 + float(sigma))  # `x - sigma * eps` cancels in float32 at high noise
    np.testing.assert_allclose(model.network_time(sigma), t, atol=1e-3)
    np.testing.assert_allclose(model.denoise(x, sigma), expected, rtol=1e-4, atol=tolerance)
    np.testing.assert_allclose(eqx.filter_jit(model.denoise)(x, sigma), expected, rtol=1e-4, atol=tolerance)


def test_the_denoiser_between_steps_asks_the_network_at_a_fractional_step():
    model = VPredictionModel(a_network, SCHEDULE.alpha_bars, SCALE)
    levels = jnp.sqrt((1 - SCHEDULE.alpha_bars) / SCHEDULE.alpha_bars)
    between = jnp.sqrt(levels[40] * levels[41])  # halfway in log sigma
    np.testing.assert_allclose(model.network_time(between), 40.5, atol=1e-3)
    # Below the lowest step and above the highest, the network is asked at the ends.
    np.testing.assert_allclose(model.network_time(levels[0] / 10), 0.0)
    np.testing.assert_allclose(model.network_time(levels[-1] * 10), 99.0)


def test_a_network_that_predicts_v_exactly_denoises_exactly(clean_and_noise):
    x0, noise = clean_and_noise
    sigma = 0.37
    scaled = 1.0 / (1.0 + (PER_PIXEL_SCALE * sigma) ** 2)
    # The v of the scaled image noised with the scaled noise level: sqrt(a) n - sqrt(1 - a) s x0.
    exact_v = jnp.sqrt(scaled) * noise - jnp.sqrt(1 - scaled) * PER_PIXEL_SCALE * x0
    exact = VPredictionModel(lambda x, t, y: exact_v, SCHEDULE.alpha_bars, PER_PIXEL_SCALE)
    np.testing.assert_allclose(exact.denoise(x0 + sigma * noise, sigma), x0, rtol=1e-4, atol=1e-5)
