import jax
import numpy as np
import pytest
import scipy.stats

from course import morphology


def gaussian_image(sigma_x, sigma_y, centre=(15.5, 15.5), flux=1.0, size=32):
    rows, cols = np.mgrid[:size, :size].astype(np.float32)
    image = np.exp(-((cols - centre[1]) ** 2 / (2 * sigma_x**2) + (rows - centre[0]) ** 2 / (2 * sigma_y**2)))
    return (flux * image / image.sum()).astype(np.float32)


def test_flux_peak_and_centroid():
    image = gaussian_image(2.0, 2.0, centre=(12.0, 18.0), flux=5.0)
    assert morphology.total_flux(image) == pytest.approx(5.0, rel=1e-5)
    assert morphology.peak(image) == pytest.approx(image.max())
    np.testing.assert_allclose(morphology.centroid(image[None]), [12.0, 18.0], atol=1e-3)


def test_half_light_radius_of_a_round_gaussian():
    """Half the light of a round Gaussian lies within sigma sqrt(2 ln 2)."""
    radius = morphology.half_light_radius(gaussian_image(3.0, 3.0))
    assert radius == pytest.approx(3.0 * np.sqrt(2 * np.log(2)), rel=0.05)


@pytest.mark.parametrize("fraction", [0.2, 0.8])
def test_light_radius_of_a_round_gaussian(fraction):
    """A fraction f of the light of a round Gaussian lies within sigma sqrt(-2 ln(1 - f))."""
    radius = morphology.light_radius(gaussian_image(6.0, 6.0, centre=(31.3, 32.2), size=64), fraction)
    assert radius == pytest.approx(6.0 * np.sqrt(-2 * np.log(1 - fraction)), rel=0.03)


def test_ellipticity_of_round_and_elongated_gaussians():
    assert morphology.ellipticity(gaussian_image(3.0, 3.0)) == pytest.approx(0.0, abs=1e-4)
    # Axis ratio q = 1/2: (1 - q^2) / (1 + q^2) = 0.6 with a flat weight.
    stretched = gaussian_image(4.0, 2.0)
    assert morphology.ellipticity(stretched, weight_sigma=1e4) == pytest.approx(0.6, abs=0.01)
    rotated = stretched.T
    assert morphology.ellipticity(rotated, weight_sigma=1e4) == pytest.approx(0.6, abs=0.01)
    batch = jax.vmap(morphology.ellipticity)(np.stack([stretched, rotated]))
    assert batch.shape == (2,)


def test_ellipticity_components_give_the_axis_and_the_modulus():
    stretched = gaussian_image(4.0, 2.0)  # elongated along the columns' axis
    np.testing.assert_allclose(morphology.ellipticity_components(stretched, weight_sigma=1e4), [0.6, 0.0], atol=0.01)
    np.testing.assert_allclose(morphology.ellipticity_components(stretched.T, weight_sigma=1e4), [-0.6, 0.0],
                               atol=0.01)
    # The same ellipse turned by 45 degrees: elongated along the diagonal where rows and columns grow together.
    rows, cols = np.mgrid[:32, :32].astype(np.float32) - 15.5
    u, v = (cols + rows) / np.sqrt(2), (cols - rows) / np.sqrt(2)
    diagonal = np.exp(-(u**2 / (2 * 4.0**2) + v**2 / (2 * 2.0**2))).astype(np.float32)
    np.testing.assert_allclose(morphology.ellipticity_components(diagonal, weight_sigma=1e4), [0.0, 0.6], atol=0.01)
    components = morphology.ellipticity_components(diagonal)
    assert morphology.ellipticity(diagonal) == pytest.approx(float(np.hypot(*components)), rel=1e-6)


def test_wasserstein_1d_matches_scipy(rng):
    a, b = rng.normal(size=300), rng.normal(1.0, 2.0, size=200)
    assert morphology.wasserstein_1d(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-9)
    assert morphology.wasserstein_1d(a, a + 0.5) == pytest.approx(0.5, rel=1e-9)
