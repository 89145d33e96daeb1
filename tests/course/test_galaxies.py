import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.data import galaxies


@pytest.fixture(scope="module")
def batch():
    return galaxies.simulate_galaxies(jax.random.key(0), 16)


def test_images_have_stamp_shape_and_keep_the_parameters(batch):
    for images in (batch.truth, batch.convolved, batch.observed):
        assert images.shape == (16, 1, galaxies.STAMP_SIZE, galaxies.STAMP_SIZE)
        assert images.dtype == jnp.float32
    assert all(field.shape == (16,) for field in batch.params)
    np.testing.assert_array_equal(batch.labels, np.asarray(batch.params.bulge_fraction) > 0.5)


def test_images_hold_the_flux_of_their_parameters(batch):
    flux = np.asarray(batch.params.flux)
    np.testing.assert_allclose(np.sum(batch.truth, axis=(1, 2, 3)), flux, rtol=0.03)
    np.testing.assert_allclose(np.sum(batch.convolved, axis=(1, 2, 3)), flux, rtol=0.05)


def test_truth_images_do_not_ring(batch):
    # Drawn bare, the bulge's cusp aliases into rows and columns of alternating sign (below
    # -0.003 of the peak in 87% of the galaxies); at `TRUTH_SIGMA` it is band-limited.
    truth = np.asarray(batch.truth)
    assert np.all(np.min(truth, axis=(1, 2, 3)) > -0.003 * np.max(truth, axis=(1, 2, 3)))


def test_observed_images_carry_the_sky_noise(batch):
    residual = np.asarray(batch.observed - batch.convolved)
    assert residual.std() == pytest.approx(galaxies.NOISE_SIGMA, rel=0.05)


def test_psf_blurs_the_truth_into_the_convolved_images(batch):
    kernel = galaxies.psf_image()
    assert kernel.shape == (15, 15)
    np.testing.assert_allclose(jnp.sum(kernel), 1.0, rtol=1e-5)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-7)
    blurred = jax.vmap(galaxies.convolve_psf, in_axes=(0, None))(batch.truth, kernel)
    error = jnp.linalg.norm(blurred - batch.convolved) / jnp.linalg.norm(batch.convolved)
    assert error < 0.05
    # The peak drops: the PSF spreads the light.
    assert np.all(np.max(blurred, axis=(1, 2, 3)) < np.max(batch.truth, axis=(1, 2, 3)))


def test_convolve_psf_is_linear_and_its_adjoint_flips_the_kernel(rng):
    kernel = rng.random((5, 5)).astype(np.float32)
    x, y = rng.normal(size=(2, 1, 12, 12)).astype(np.float32)
    forward = lambda image: galaxies.convolve_psf(image, kernel)
    np.testing.assert_allclose(forward(2.0 * x + y), 2.0 * forward(x) + forward(y), rtol=1e-4, atol=1e-5)
    adjoint = galaxies.convolve_psf(y, kernel[::-1, ::-1])
    np.testing.assert_allclose(jnp.vdot(forward(x), y), jnp.vdot(x, adjoint), rtol=1e-4)


def test_parameters_follow_the_prior():
    params = galaxies.sample_params(jax.random.key(1), 20_000)
    assert np.median(params.flux) == pytest.approx(18.0, rel=0.05)
    assert np.all(params.bulge_radius < params.disk_radius)
    modulus = np.hypot(params.e1, params.e2)
    assert np.all(modulus < 0.7) and np.mean(modulus) == pytest.approx(0.7 * 1.5 / 5.5, rel=0.05)
    assert np.mean(galaxies.labels_of(params)) == pytest.approx(0.5, abs=0.02)


def test_load_galaxies_simulates_once_then_reads_the_cache(batch, tmp_path, monkeypatch):
    calls = []

    def simulate(key, num_galaxies):  # the simulator itself is tested above
        calls.append(num_galaxies)
        return batch

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(galaxies, "simulate_galaxies", simulate)
    first = galaxies.load_galaxies("test")
    assert calls == [galaxies.SPLIT_SIZES["test"]]
    assert [path.name for path in tmp_path.iterdir()] == ["galaxies-v2-test.npz"]
    second = galaxies.load_galaxies("test")
    assert len(calls) == 1
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="split"):
        galaxies.load_galaxies("validation")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "here"))
    assert galaxies.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("COURSE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert galaxies.cache_dir() == tmp_path / "jax-genai-course"
