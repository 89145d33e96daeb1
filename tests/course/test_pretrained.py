import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import pretrained
from course.nn import UNet
from course.nn.v_prediction import VPredictionModel


def test_shipped_galaxy_model_loads_and_denoises():
    loaded = pretrained.load_galaxy_unet()
    assert isinstance(loaded.model, VPredictionModel) and isinstance(loaded.model.network, UNet)
    # The sampling schedule is the training one cut at the noise level max_noise_level (20).
    assert loaded.schedule.num_steps <= loaded.metadata["schedule"]["num_steps"]
    np.testing.assert_allclose(loaded.schedule.alpha_bars[-1], 1.0 / (1.0 + 20.0**2), rtol=0.2)
    # A blank sky with a little noise: the network must recognise the noise it was given.
    noise = jax.random.normal(jax.random.key(0), (1, 32, 32))
    t = jnp.asarray(50.0)
    alpha_bar = loaded.schedule.alpha_bars[50]
    predicted = loaded.model(jnp.sqrt(1.0 - alpha_bar) * noise, t)
    assert jnp.mean((predicted - noise) ** 2) < 0.1


def test_damaged_weights_are_refused_with_advice(tmp_path):
    for suffix in (".eqx", ".json"):
        shutil.copy(pretrained.GALAXY_UNET_PATH.with_suffix(suffix), tmp_path / f"copy{suffix}")
    weights = tmp_path / "copy.eqx"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(pretrained.ChecksumError, match="pretraining.galaxy_unet"):
        pretrained.load_galaxy_unet(weights)


def test_missing_weights_say_how_to_retrain(tmp_path):
    with pytest.raises(FileNotFoundError, match="pretraining.galaxy_unet"):
        pretrained.load_galaxy_unet(tmp_path / "absent.eqx")


def save_and_load_tiny_unet(tmp_path, seed: int, position_channels: bool = False, data_scale=None,
                            attention: bool = False, **metadata):
    """A small random UNet written by the training script's `save` (with its `data_scale`
    if given) with `metadata` (its architecture added), and what `load_galaxy_unet` makes
    of the file."""
    from pretraining import galaxy_unet as script

    network = UNet(1, (8, 16), embedding_dim=16, groups=4, num_classes=2, position_channels=position_channels,
                   attention=attention, key=jax.random.key(seed))
    architecture = {"in_channels": 1, "channels": [8, 16], "blocks_per_level": 1, "num_classes": 2,
                    "embedding_dim": 16, "groups": 4, "position_channels": position_channels,
                    "attention": attention}
    saved = network if data_scale is None else (network, data_scale)
    script.save(saved, tmp_path / "tiny.eqx", {"unet": architecture, **metadata})
    return network, pretrained.load_galaxy_unet(tmp_path / "tiny.eqx")


@pytest.mark.parametrize(("position_channels", "attention"), [(False, False), (True, False), (False, True)])
def test_weights_round_trip_through_the_training_script_format(tmp_path, position_channels, attention):
    model, loaded = save_and_load_tiny_unet(
        tmp_path, 3, position_channels, attention=attention, schedule={"kind": "linear", "num_steps": 10}
    )
    assert loaded.model.position_channels == position_channels
    assert (loaded.model.middle_attention is not None) == attention
    x = jnp.ones((1, 8, 8))
    np.testing.assert_allclose(loaded.model(x, 3.0, 1), model(x, 3.0, 1), rtol=1e-6)
    assert loaded.schedule.num_steps == 10


def test_a_v_prediction_network_is_wrapped_into_a_noise_predictor_with_its_data_scale(tmp_path):
    data_scale = jnp.linspace(2.0, 50.0, 64).reshape(1, 8, 8)
    network, loaded = save_and_load_tiny_unet(
        tmp_path, 4, data_scale=data_scale, schedule={"kind": "cosine", "num_steps": 50},
        parameterisation={"kind": "v", "data_scale_shape": [1, 8, 8]},
    )
    np.testing.assert_array_equal(loaded.model.data_scale, data_scale)
    expected = VPredictionModel(network, loaded.schedule.alpha_bars, data_scale)
    x = jnp.ones((1, 8, 8))
    np.testing.assert_allclose(loaded.model(x, 3.0, 1), expected(x, 3.0, 1), rtol=1e-6)


def test_files_with_one_data_scale_for_every_pixel_still_load(tmp_path):
    network, loaded = save_and_load_tiny_unet(
        tmp_path, 5, schedule={"kind": "cosine", "num_steps": 50}, parameterisation={"kind": "v", "data_scale": 5.0}
    )
    expected = VPredictionModel(network, loaded.schedule.alpha_bars, 5.0)
    x = jnp.ones((1, 8, 8))
    np.testing.assert_allclose(loaded.model(x, 3.0, 1), expected(x, 3.0, 1), rtol=1e-6)


def test_the_data_scale_is_one_over_each_pixels_rms_symmetrised_and_capped():
    from pretraining.galaxy_unet import MIN_DATA_SD, pixel_data_scale

    rows, cols = np.indices((8, 8)) - 3.5
    profile = 2.0 * np.exp(-(rows**2 + cols**2) / 8.0)
    signs = np.where(np.arange(10) % 2, 1.0, -1.0)[:, None, None, None]
    expected = 1.0 / np.clip(profile, MIN_DATA_SD, 0.5)
    np.testing.assert_allclose(pixel_data_scale(signs * profile, max_sd=0.5)[0], expected, rtol=1e-5)
    # One image with one bright pixel: its mean square is shared by the 8 pixels that the
    # stamp's rotations and transposes take it to.
    image = np.zeros((1, 1, 8, 8))
    image[0, 0, 0, 1] = 1.0
    scale = np.asarray(pixel_data_scale(image, max_sd=1.0))[0]
    orbit = [(0, 1), (1, 0), (0, 6), (6, 0), (1, 7), (7, 1), (6, 7), (7, 6)]
    np.testing.assert_allclose([scale[p] for p in orbit], np.sqrt(8.0), rtol=1e-5)
    assert np.sum(scale == np.float32(1.0 / MIN_DATA_SD)) == 64 - len(orbit)


def test_the_moment_loss_weights_measure_flux_centroid_shape_and_size():
    from pretraining.galaxy_unet import MOMENT_WIDTHS, moment_weights

    weights = np.asarray(moment_weights(32))
    assert weights.shape == (6 * len(MOMENT_WIDTHS), 32, 32)
    np.testing.assert_allclose(np.sum(weights**2, axis=(1, 2)), 1.0, rtol=1e-5)
    # A Gaussian galaxy stretched along the columns, one pixel right of and below the centre.
    rows, cols = np.indices((32, 32)) - 15.5
    galaxy = np.exp(-((cols - 1) ** 2 / 8.0 + (rows - 1) ** 2 / 2.0) / 2.0)
    flux, row, col, plus, cross, size = (np.sum(weights[6 + k] * galaxy) for k in range(6))
    assert flux > 0 and size > 0 and row > 0 and col > 0 and plus > 0
    stretched_the_other_way = np.sum(weights[6 + 3] * galaxy.T)
    np.testing.assert_allclose(stretched_the_other_way, -plus, rtol=1e-5)


def test_training_fine_tunes_with_the_moment_loss_after_the_pixel_loss_phase():
    from pretraining.galaxy_unet import Config, phases

    main_phase, finetune = phases(
        Config(steps=400, stop_after=300, finetune_steps=80, finetune_warmup_steps=10, moment_loss_weight=0.5)
    )
    assert (main_phase.num_steps, main_phase.moment_loss_weight) == (300, 0.0)
    assert (finetune.num_steps, finetune.moment_loss_weight) == (80, 0.5)
    assert float(finetune.learning_rate(80)) < float(finetune.learning_rate(40)) < Config().learning_rate
    assert float(main_phase.learning_rate(0)) == 0.0
    assert [phase.num_steps for phase in phases(Config(steps=400, stop_after=0, finetune_steps=0))] == [400]
    (alone,) = phases(Config(steps=0, finetune_steps=80, finetune_warmup_steps=10))  # fine-tuning an --init model
    assert (alone.num_steps, alone.moment_loss_weight) == (80, Config().moment_loss_weight)
    with pytest.raises(ValueError, match="Nothing to train"):
        phases(Config(steps=0, finetune_steps=0))
    with pytest.raises(ValueError, match="--finetune-warmup-steps must be smaller than --finetune-steps"):
        phases(Config(finetune_steps=50, finetune_warmup_steps=100))


@pytest.mark.parametrize("t", [3, 30, 300])
def test_the_loss_weights_give_the_v_errors_of_the_loss_scale(t):
    from course.schedules import DDPMSchedule
    from pretraining.galaxy_unet import loss_weights

    alpha_bars = DDPMSchedule.cosine(500).alpha_bars
    rng = np.random.default_rng(t)
    x0, noise, x0_error = (jnp.asarray(rng.normal(size=(1, 4, 4)), jnp.float32) for _ in range(3))
    data_scale, loss_scale = jnp.full((1, 4, 4), 2.0), jnp.linspace(1.0, 30.0, 16).reshape(1, 4, 4)
    a = alpha_bars[t]
    # An estimate x0 + x0_error of the same x_t implies the noise below.
    x_t = jnp.sqrt(a) * x0 + jnp.sqrt(1 - a) * noise
    implied_noise = (x_t - jnp.sqrt(a) * (x0 + x0_error)) / jnp.sqrt(1 - a)

    def squared_v_error(scale):
        model = VPredictionModel(lambda x, t, y: x, alpha_bars, scale)
        return (model.v_target(x0 + x0_error, implied_noise, t) - model.v_target(x0, noise, t)) ** 2

    noise_variance = jnp.full((1, 1, 1, 1), (1 - a) / a)
    weights = loss_weights(noise_variance, data_scale, loss_scale)[0]
    np.testing.assert_allclose(weights * squared_v_error(data_scale), squared_v_error(loss_scale), rtol=2e-3)
    np.testing.assert_allclose(loss_weights(noise_variance, data_scale, data_scale), 1.0)


def test_dihedral_copies_are_the_eight_symmetries_of_the_square():
    from pretraining.galaxy_unet import dihedral_copies

    images = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    copies = dihedral_copies(images)
    assert copies.shape == (16, 1, 3, 3)
    np.testing.assert_array_equal(copies[:2], images)  # symmetry 0 is the identity, image by image
    np.testing.assert_array_equal(copies[2:4], np.rot90(images, 1, axes=(-2, -1)))
    np.testing.assert_array_equal(copies[8:10], np.swapaxes(images, -1, -2))
    # All 8 copies of an image differ (its pixels are distinct) and keep its pixel values.
    first = copies[0::2, 0].reshape(8, -1)
    assert len({tuple(row) for row in first}) == 8
    np.testing.assert_array_equal(np.sort(first, axis=1), np.sort(np.tile(images[0, 0].ravel(), (8, 1)), axis=1))


def test_a_share_of_each_batch_can_be_trained_at_the_lowest_steps():
    from pretraining.galaxy_unet import training_steps

    key = jax.random.key(0)
    uniform = np.asarray(training_steps(key, 20_000, 968, 0.0, 20))
    assert uniform.min() == 0 and uniform.max() == 967
    assert abs(np.mean(uniform < 20) - 20 / 968) < 0.005
    mixed = np.asarray(training_steps(key, 20_000, 968, 0.5, 20))
    assert mixed.min() == 0 and mixed.max() == 967
    # Half the batch below step 20, plus the uniform half's own share of those steps.
    assert abs(np.mean(mixed < 20) - (0.5 + 0.5 * 20 / 968)) < 0.015
    assert abs(np.mean(mixed[mixed < 20] == 7) - 1 / 20) < 0.01  # uniform within the low range
    assert set(np.asarray(training_steps(key, 1000, 5, 1.0, 20)).tolist()) == set(range(5))


def test_the_training_update_is_adamw_with_the_steps_learning_rate():
    import optax

    from pretraining.galaxy_unet import optimizer

    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    grads = [{"w": jnp.array([0.3, -0.1, 0.2])}, {"w": jnp.array([-0.2, 0.4, 0.1])}]
    rates = [1e-3, 5e-4]
    schedule = lambda count: jnp.where(count == 0, rates[0], rates[1])
    reference = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4))
    ours, theirs = params, params
    ours_state, theirs_state = optimizer().init(params), reference.init(params)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        for grad, rate in zip(grads, rates, strict=True):
            updates, ours_state = optimizer().update(grad, ours_state, ours)
            ours = {"w": ours["w"] - rate * updates["w"]}
            updates, theirs_state = reference.update(grad, theirs_state, theirs)
            theirs = optax.apply_updates(theirs, updates)
    np.testing.assert_allclose(ours["w"], theirs["w"], rtol=1e-6)


def test_a_timed_first_phase_is_refitted_to_its_time_budget():
    from pretraining.galaxy_unet import TIMING_STEPS, Config, fitted_to_time, phases

    config = Config(steps=100_000, stop_after=2500, warmup_steps=500, max_minutes=10.0, finetune_steps=0)
    (main_phase,) = phases(config)
    assert main_phase.num_steps == 100_000 and main_phase.max_seconds == 600.0  # --stop-after is ignored
    # 220 steps in 30 s at 0.1 s per step: 5,700 more steps fit in the remaining 570 s.
    fitted = fitted_to_time(main_phase, config, 220, 30.0, 0.1)
    assert fitted.num_steps == 5920
    assert float(fitted.learning_rate(250)) == float(main_phase.learning_rate(250))  # the same warm-up
    np.testing.assert_allclose(float(fitted.learning_rate(5920)), config.learning_rate / 20, rtol=1e-6)
    # Over budget already: the phase ends at the next step.
    assert fitted_to_time(main_phase, config, 220, 700.0, 0.1).num_steps == 221
    with pytest.raises(ValueError, match=f"--warmup-steps must be at least {TIMING_STEPS[1]}"):
        phases(Config(max_minutes=5.0, warmup_steps=100))


def test_training_starts_from_a_saved_network_of_the_same_architecture_and_data_scale(tmp_path):
    from pretraining import galaxy_unet as script

    data_scale = jnp.linspace(2.0, 50.0, 64).reshape(1, 8, 8)
    network, _ = save_and_load_tiny_unet(
        tmp_path, 6, data_scale=data_scale, schedule={"kind": "cosine", "num_steps": 50},
        parameterisation={"kind": "v", "data_scale_shape": [1, 8, 8], "max_data_sd": 0.5},
    )
    fresh = UNet(1, (8, 16), embedding_dim=16, groups=4, num_classes=2, key=jax.random.key(7))
    started = script.initial_network(tmp_path / "tiny.eqx", fresh, data_scale)
    x = jnp.ones((1, 8, 8))
    np.testing.assert_allclose(started(x, 3.0, 1), network(x, 3.0, 1), rtol=1e-6)
    with pytest.raises(ValueError, match="another data scale"):
        script.initial_network(tmp_path / "tiny.eqx", fresh, 2.0 * data_scale)
    wider = UNet(1, (8, 32), embedding_dim=16, groups=4, num_classes=2, key=jax.random.key(7))
    with pytest.raises(ValueError, match="same --channels"):
        script.initial_network(tmp_path / "tiny.eqx", wider, data_scale)
