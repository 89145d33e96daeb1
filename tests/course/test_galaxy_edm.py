"""The EDM candidate of the galaxy model: its training script's file format, `sigma_data`, a
short training run, and `course.pretrained.sample_galaxies` on what it wrote."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import pretrained
from course.nn import UNet
from course.nn.edm import EDMDenoiser, NoisePredictor

TINY_ARCHITECTURE = {"in_channels": 1, "channels": [8, 16], "blocks_per_level": 1, "num_classes": 2,
                     "embedding_dim": 16, "groups": 4}


@pytest.mark.parametrize("sigma_data", [jnp.linspace(0.01, 1.0, 64).reshape(1, 8, 8), jnp.asarray(0.09)])
def test_edm_weights_round_trip_into_a_noise_predictor_and_its_denoiser(tmp_path, sigma_data):
    from pretraining.galaxy_edm import save

    network = UNet(1, (8, 16), embedding_dim=16, groups=4, num_classes=2, key=jax.random.key(3))
    save((network, sigma_data), tmp_path / "tiny.eqx",
         {"unet": TINY_ARCHITECTURE, "schedule": {"kind": "cosine", "num_steps": 50},
          "parameterisation": {"kind": "edm", "sigma_data_shape": list(sigma_data.shape)}})
    loaded = pretrained.load_galaxy_unet(tmp_path / "tiny.eqx")
    np.testing.assert_array_equal(loaded.denoiser.sigma_data, sigma_data)
    expected = NoisePredictor(EDMDenoiser(network, sigma_data), loaded.schedule.alpha_bars)
    x = jnp.ones((1, 8, 8))
    np.testing.assert_allclose(loaded.model(x, 3, 1), expected(x, 3, 1), rtol=1e-6)
    assert loaded.schedule.num_steps < 50  # cut at the noise level 20


def test_sigma_data_is_each_pixels_rms_symmetrised_and_floored_or_one_number():
    from pretraining.galaxy_edm import MIN_SIGMA_DATA, sigma_data_of

    rows, cols = np.indices((8, 8)) - 3.5
    profile = 2.0 * np.exp(-(rows**2 + cols**2) / 2.0)
    signs = np.where(np.arange(10) % 2, 1.0, -1.0)[:, None, None, None]
    images = signs * profile
    np.testing.assert_allclose(sigma_data_of(images, per_pixel=True)[0], np.maximum(profile, MIN_SIGMA_DATA),
                               rtol=1e-5)
    np.testing.assert_allclose(sigma_data_of(images, per_pixel=False), np.sqrt(np.mean(profile**2)), rtol=1e-5)
    # A pixel bright in one orientation only is averaged over the square's 8 symmetries.
    corner = np.zeros((1, 1, 8, 8))
    corner[0, 0, 0, 1] = 1.0
    symmetric = np.asarray(sigma_data_of(corner, per_pixel=True)[0])
    np.testing.assert_allclose(symmetric[[0, 1, 6, 7, 0, 1, 6, 7], [1, 0, 0, 1, 6, 7, 7, 6]], np.sqrt(1 / 8),
                               rtol=1e-5)


def test_a_short_run_lowers_the_loss_and_writes_a_model_that_samples_galaxies(tmp_path, monkeypatch):
    from course.data import galaxies
    from pretraining import galaxy_edm as script

    train = galaxies.load_galaxies("train")
    monkeypatch.setattr(script, "load_galaxies", lambda split: train._replace(truth=train.truth[:64],
                                                                              labels=train.labels[:64]))
    config = script.Config(steps=60, batch_size=16, warmup_steps=10, channels=(8, 16), checkpoint_every=60)
    script.train(config, tmp_path / "tiny.eqx")
    metadata = json.loads((tmp_path / "tiny.json").read_text())
    losses = [entry["loss"] for entry in metadata["log"]]
    assert metadata["steps_done"] == 60 and losses[-1] < losses[0]
    assert metadata["parameterisation"] == {"kind": "edm", "sigma_data_shape": [1, 32, 32]}
    loaded = pretrained.load_galaxy_unet(tmp_path / "tiny.eqx")
    labels = jnp.asarray([0, 1, 2])
    images = pretrained.sample_galaxies(loaded, jax.random.key(1), labels, num_steps=4)
    assert images.shape == (3, 1, 32, 32) and bool(jnp.all(jnp.isfinite(images)))
    np.testing.assert_array_equal(images, pretrained.sample_galaxies(loaded, jax.random.key(1), labels, num_steps=4))


def test_a_noise_predicting_network_says_how_to_sample_it():
    shipped = pretrained.load_galaxy_unet()
    only_noise = pretrained.PretrainedDiffusion(shipped.model.network, shipped.schedule,
                                                {"parameterisation": {"kind": "epsilon"}})
    with pytest.raises(ValueError, match="DDPM or DDIM sampler"):
        pretrained.sample_galaxies(only_noise, jax.random.key(0), jnp.asarray([0]))


def test_the_shipped_v_prediction_model_samples_by_heun_from_its_lowest_trained_noise_level():
    shipped = pretrained.load_galaxy_unet()
    alpha_bar = shipped.schedule.alpha_bars[0]
    assert pretrained.lowest_noise_level(shipped) == pytest.approx(float(jnp.sqrt((1 - alpha_bar) / alpha_bar)))
    labels = jnp.asarray([0, 1])
    images = pretrained.sample_galaxies(shipped, jax.random.key(2), labels, num_steps=3)
    assert images.shape == (2, 1, 32, 32) and bool(jnp.all(jnp.isfinite(images)))
