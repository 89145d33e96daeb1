"""Simulated galaxy images: bulge + disk profiles seen through a PSF, with noise.

A stamp is a 32x32 single-band image at the pixel scale of the Legacy Surveys (0.262
arcsec). Each galaxy is an exponential disk plus a de Vaucouleurs-like bulge (a Spergel
profile with `nu = -0.6`), sheared to a random ellipticity, rotated, shifted by a fraction
of a pixel and given a random total flux; the profiles are drawn with `jax_galsim`, under
`jit` and `vmap`. Three versions of each galaxy are kept:

- `truth`: the galaxy at the resolution `TRUTH_SIGMA` (a Gaussian of 0.2 arcsec, well below
  the seeing), integrated over each pixel, no noise. The few-pixel cusp of the bulge is
  smoothed so that the image is sampled without aliasing: drawn bare, it rings along the
  pixel rows and columns through the centre, in pixels of alternating sign;
- `convolved`: the same galaxy seen through the PSF (a Moffat profile), no noise;
- `observed`: `convolved` plus Gaussian sky noise of standard deviation `NOISE_SIGMA`;

together with the simulation parameters (`GalaxyParams`), the ground truth for
reconstruction and labels for conditional generation. Pixel values are in units of
`FLUX_UNIT`: a typical galaxy's truth image peaks at about 0.8 and the pixels have a
standard deviation of about 0.09, a scale at which the diffusion models of the course train
well.

`load_galaxies(split)` simulates the training and test sets once (seeded, about a minute
on two cores) and caches them in `cache_dir()`; set `COURSE_DATA_DIR` to cache elsewhere.
"""

import math
import os
import pathlib
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from course.training import quick_mode

STAMP_SIZE = 32
PIXEL_SCALE = 0.262  # arcsec per pixel, as in the Legacy Surveys (DECaLS)
PSF_FWHM = 1.1  # arcsec, typical ground-based seeing
PSF_BETA = 3.5  # Moffat index
NOISE_SIGMA = 0.03  # sky noise of the observed images, in pixel units
FLUX_UNIT = 1.0  # pixel values are given in this unit of flux
TRUTH_SIGMA = 0.2  # arcsec: the resolution of the truth images (Gaussian standard deviation)

BULGE_NU = -0.6  # Spergel index that mimics a de Vaucouleurs (Sersic n = 4) bulge
BULGE_DOMINATED = 1  # class label of galaxies with bulge_fraction > 0.5
DISK_DOMINATED = 0

QUICK_MODE_SIZE = 200
SPLIT_SIZES = {"train": 8000, "test": 2000}
_SPLIT_SEEDS = {"train": 0, "test": 1}
_CACHE_VERSION = 2
_CHUNK = 500  # galaxies drawn per compiled call


class GalaxyParams(NamedTuple):
    """Parameters of a batch of simulated galaxies (each field has shape `(n,)`).

    `flux` is the total flux (in `FLUX_UNIT`), `disk_radius` and `bulge_radius` the
    half-light radii in arcsec, `bulge_fraction` the fraction of the flux in the bulge,
    `e1, e2` the ellipticity components (`|e| = (a - b) / (a + b)` for axes `a >= b`),
    `dx, dy` the offset of the centre from the stamp centre in arcsec.
    """

    flux: Float[Array, " n"]
    disk_radius: Float[Array, " n"]
    bulge_radius: Float[Array, " n"]
    bulge_fraction: Float[Array, " n"]
    e1: Float[Array, " n"]
    e2: Float[Array, " n"]
    dx: Float[Array, " n"]
    dy: Float[Array, " n"]


class Galaxies(NamedTuple):
    """A batch of simulated galaxies: images of shape `(n, 1, 32, 32)` (one band, channels
    first, as equinox's convolutions want), their parameters and class labels."""

    truth: Float[Array, "n 1 32 32"]
    convolved: Float[Array, "n 1 32 32"]
    observed: Float[Array, "n 1 32 32"]
    params: GalaxyParams
    labels: Int[Array, " n"]


def sample_params(key: PRNGKeyArray, num_galaxies: int) -> GalaxyParams:
    """Draw galaxy parameters from the simulator's prior.

    Log-normal flux and disk radius, a bulge 1.5 to 3 times more compact than the disk,
    a bulge fraction spread over `[0, 1]` (Beta(0.7, 0.7): many pure disks and pure bulges),
    ellipticity modulus from a Beta(1.5, 4) distribution (mean 0.27) at a uniform angle, and
    centre offsets of a fraction of a pixel.
    """
    keys = jax.random.split(key, 7)
    n = (num_galaxies,)
    flux = jnp.exp(jax.random.normal(keys[0], n) * 0.5 + math.log(18.0))
    disk_radius = jnp.exp(jax.random.normal(keys[1], n) * 0.25 + math.log(1.0))
    bulge_radius = disk_radius / jax.random.uniform(keys[2], n, minval=1.5, maxval=3.0)
    bulge_fraction = jax.random.beta(keys[3], 0.7, 0.7, n)
    modulus = 0.7 * jax.random.beta(keys[4], 1.5, 4.0, n)
    angle = jax.random.uniform(keys[5], n, maxval=math.pi)  # orientation of the major axis
    offset = jax.random.uniform(keys[6], (2, num_galaxies), minval=-0.5, maxval=0.5) * PIXEL_SCALE
    return GalaxyParams(
        flux=flux,
        disk_radius=disk_radius,
        bulge_radius=bulge_radius,
        bulge_fraction=bulge_fraction,
        e1=modulus * jnp.cos(2.0 * angle),
        e2=modulus * jnp.sin(2.0 * angle),
        dx=offset[0],
        dy=offset[1],
    )


def labels_of(params: GalaxyParams) -> Int[Array, " n"]:
    """Class labels: `BULGE_DOMINATED` (1) where the bulge carries more than half the flux,
    else `DISK_DOMINATED` (0)."""
    return (params.bulge_fraction > 0.5).astype(jnp.int32)


def _profiles(flux, disk_radius, bulge_radius, bulge_fraction, e1, e2, dx, dy):
    import jax_galsim as galsim  # imported here: it is slow to import and only the simulator needs it

    gsparams = galsim.GSParams(minimum_fft_size=64, maximum_fft_size=64)  # static sizes for jit
    disk = galsim.Exponential(half_light_radius=disk_radius, flux=1.0 - bulge_fraction, gsparams=gsparams)
    bulge = galsim.Spergel(nu=BULGE_NU, half_light_radius=bulge_radius, flux=bulge_fraction, gsparams=gsparams)
    galaxy = (disk + bulge).shear(e1=e1, e2=e2).shift(dx, dy).withFlux(flux / FLUX_UNIT)
    galaxy = galsim.Convolve([galaxy, galsim.Gaussian(sigma=TRUTH_SIGMA, gsparams=gsparams)])
    psf = galsim.Moffat(beta=PSF_BETA, fwhm=PSF_FWHM, gsparams=gsparams)
    return galaxy, psf, galsim


def _draw_one(flux, disk_radius, bulge_radius, bulge_fraction, e1, e2, dx, dy):
    galaxy, psf, galsim = _profiles(flux, disk_radius, bulge_radius, bulge_fraction, e1, e2, dx, dy)
    draw = dict(nx=STAMP_SIZE, ny=STAMP_SIZE, scale=PIXEL_SCALE)
    truth = galaxy.drawImage(**draw).array
    convolved = galsim.Convolve([galaxy, psf]).drawImage(**draw).array
    return truth, convolved


_draw_batch = jax.jit(jax.vmap(_draw_one))


def psf_image(size: int = 15) -> Float[Array, "size size"]:
    """The PSF sampled at the centres of a `size x size` grid of pixels (odd `size`),
    normalised to unit sum: the kernel of `convolve_psf`.

    Convolving a pixel-integrated truth image with this kernel reproduces, up to a percent
    or so, the PSF-convolved image drawn by the simulator.
    """
    if size % 2 == 0:
        raise ValueError(f"The PSF stamp needs an odd size, got {size}.")
    import jax_galsim as galsim

    with jax.numpy_dtype_promotion("standard"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Explicitly requested dtype float64")
        psf = galsim.Moffat(beta=PSF_BETA, fwhm=PSF_FWHM)
        kernel = psf.drawImage(nx=size, ny=size, scale=PIXEL_SCALE, method="no_pixel").array
    return kernel / jnp.sum(kernel)


def convolve_psf(
    image: Float[ArrayLike, "*channels h w"], kernel: Float[ArrayLike, "k k"]
) -> Float[Array, "*channels h w"]:
    """Convolve one image (or each channel of it) with a PSF kernel, zero padded, same size.

    This is the linear forward operator `A` of the deconvolution problems of the course:
    `observed = A(truth) + noise`. It is its own adjoint up to flipping the kernel, and
    `jax.grad` differentiates through it.
    """
    image, kernel = jnp.asarray(image), jnp.asarray(kernel)
    flat = image.reshape((-1,) + image.shape[-2:])
    out = jax.vmap(lambda channel: jax.scipy.signal.convolve2d(channel, kernel, mode="same"))(flat)
    return out.reshape(image.shape)


def simulate_galaxies(
    key: PRNGKeyArray, num_galaxies: int, *, noise_sigma: float = NOISE_SIGMA
) -> Galaxies:
    """Simulate `num_galaxies` galaxies: parameters from `sample_params`, images drawn with
    `jax_galsim`, Gaussian noise of standard deviation `noise_sigma` on the observed ones."""
    params_key, noise_key = jax.random.split(key)
    params = sample_params(params_key, num_galaxies)
    truths, convolveds = [], []
    with jax.numpy_dtype_promotion("standard"), warnings.catch_warnings():  # jax_galsim mixes dtypes freely
        warnings.filterwarnings("ignore", "Explicitly requested dtype float64")
        chunk_size = min(_CHUNK, num_galaxies)
        for start in range(0, num_galaxies, chunk_size):
            chunk = [field[start : start + chunk_size] for field in params]
            size = chunk[0].shape[0]
            if size < chunk_size:  # pad to the compiled batch size
                chunk = [jnp.pad(field, (0, chunk_size - size), mode="edge") for field in chunk]
            truth, convolved = _draw_batch(*chunk)
            truths.append(truth[:size])
            convolveds.append(convolved[:size])
    truth = jnp.concatenate(truths)[:, None]
    convolved = jnp.concatenate(convolveds)[:, None]
    observed = convolved + noise_sigma * jax.random.normal(noise_key, convolved.shape)
    return Galaxies(truth=truth, convolved=convolved, observed=observed, params=params, labels=labels_of(params))


def cache_dir() -> pathlib.Path:
    """Where simulated data sets are cached: `$COURSE_DATA_DIR` if set, else the user cache
    folder (`$XDG_CACHE_HOME/jax-genai-course`, by default `~/.cache/jax-genai-course`)."""
    if os.environ.get("COURSE_DATA_DIR"):
        return pathlib.Path(os.environ["COURSE_DATA_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "jax-genai-course"


def load_galaxies(split: str = "train") -> Galaxies:
    """The `"train"` (8,000 galaxies) or `"test"` (2,000) set, simulated on first use with a
    fixed seed and cached in `cache_dir()` as a NumPy `.npz` file.

    In quick mode (`COURSE_QUICK=1`, see `course.training.quick_mode`) with no cache yet, a
    set of `QUICK_MODE_SIZE` galaxies is simulated instead, and not cached."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"split must be one of {sorted(SPLIT_SIZES)}, got {split!r}.")
    path = cache_dir() / f"galaxies-v{_CACHE_VERSION}-{split}.npz"
    if not path.exists() and quick_mode():
        return simulate_galaxies(jax.random.key(_SPLIT_SEEDS[split]), QUICK_MODE_SIZE)
    if not path.exists():
        galaxies = simulate_galaxies(jax.random.key(_SPLIT_SEEDS[split]), SPLIT_SIZES[split])
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {name: np.asarray(value) for name, value in galaxies._asdict().items() if name != "params"}
        arrays |= {f"param_{name}": np.asarray(value) for name, value in galaxies.params._asdict().items()}
        temporary = path.with_suffix(".tmp.npz")
        np.savez_compressed(temporary, **arrays)
        temporary.replace(path)
    with np.load(path) as stored:
        params = GalaxyParams(**{name: jnp.asarray(stored[f"param_{name}"]) for name in GalaxyParams._fields})
        return Galaxies(
            truth=jnp.asarray(stored["truth"]),
            convolved=jnp.asarray(stored["convolved"]),
            observed=jnp.asarray(stored["observed"]),
            params=params,
            labels=jnp.asarray(stored["labels"]),
        )
