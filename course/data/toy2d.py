"""Toy two-dimensional data sets: swiss roll, two moons and Gaussian mixtures.

The point clouds are centred and rescaled so that each coordinate has roughly unit
standard deviation, the scale at which the noise schedules of the course are tuned.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

# Swiss roll: angle t ~ U[1.5 pi, 4.5 pi], point t * (cos t, sin t) (as in scikit-learn).
_ROLL_START = 1.5 * math.pi
_ROLL_END = 4.5 * math.pi
# Exact moments of the noiseless roll: E[t cos t] = 2, E[t sin t] = 2 / (3 pi) and
# E[|x|^2] = E[t^2] = 9.75 pi^2. The scale is the root mean square of the two
# per-coordinate standard deviations (about 6.79).
_ROLL_MEAN = (2.0, 2.0 / (3.0 * math.pi))
_ROLL_SCALE = math.sqrt((9.75 * math.pi**2 - _ROLL_MEAN[0] ** 2 - _ROLL_MEAN[1] ** 2) / 2.0)

# Two moons: upper arc (cos a, sin a) and lower arc (1 - cos a, 1/2 - sin a), a ~ U[0, pi].
# Exact moments: mean (1/2, 1/4), variances 3/4 and 9/16 - 1/pi. The scale is the root
# mean square of the two per-coordinate standard deviations (about 0.71).
_MOONS_MEAN = (0.5, 0.25)
_MOONS_VARIANCE = (0.75, 9.0 / 16.0 - 1.0 / math.pi)
_MOONS_SCALE = math.sqrt(sum(_MOONS_VARIANCE) / 2.0)


def swiss_roll(key: PRNGKeyArray, num_samples: int, *, noise: int | float = 0.25) -> Float[Array, "n 2"]:
    """Sample the 2D swiss roll, centred and divided by its scale (about 6.79).

    Before rescaling the roll is `t * (cos t, sin t)` with `t ~ U[1.5 pi, 4.5 pi]`, as in
    scikit-learn's `make_swiss_roll`; `noise` is the standard deviation of the Gaussian
    noise added in those unscaled units. The result has per-coordinate standard deviations
    of about 0.97 and 1.02.
    """
    angle_key, noise_key = jax.random.split(key)
    t = jax.random.uniform(angle_key, (num_samples,), minval=_ROLL_START, maxval=_ROLL_END)
    points = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=-1)
    points = points + noise * jax.random.normal(noise_key, points.shape)
    return (points - jnp.asarray(_ROLL_MEAN)) / _ROLL_SCALE


def two_moons(key: PRNGKeyArray, num_samples: int, *, noise: int | float = 0.05) -> Float[Array, "n 2"]:
    """Sample two interleaving half circles, centred and divided by their scale (about 0.71).

    Each point lies on either arc with probability 1/2, as in scikit-learn's `make_moons`
    (whose units `noise` is given in). The result has per-coordinate standard deviations
    of about 1.23 and 0.70.
    """
    arc_key, angle_key, noise_key = jax.random.split(key, 3)
    lower = jax.random.bernoulli(arc_key, shape=(num_samples,))
    angle = jax.random.uniform(angle_key, (num_samples,), maxval=math.pi)
    x = jnp.where(lower, 1.0 - jnp.cos(angle), jnp.cos(angle))
    y = jnp.where(lower, 0.5 - jnp.sin(angle), jnp.sin(angle))
    points = jnp.stack([x, y], axis=-1)
    points = points + noise * jax.random.normal(noise_key, points.shape)
    return (points - jnp.asarray(_MOONS_MEAN)) / _MOONS_SCALE


class GaussianMixture(eqx.Module):
    """Mixture of isotropic Gaussians: component k is N(means[k], stds[k]^2 I).

    The weights are normalised to sum to one on construction.
    """

    means: Float[Array, "k d"]
    stds: Float[Array, " k"]
    weights: Float[Array, " k"]

    def __init__(
        self,
        means: Real[ArrayLike, "k d"],
        stds: Real[ArrayLike, " k"],
        weights: Real[ArrayLike, " k"] | None = None,
    ):
        """`weights` defaults to equal weights; it need not be normalised."""
        means = jnp.asarray(means)
        if not jnp.issubdtype(means.dtype, jnp.floating):
            means = means.astype(float)
        stds = jnp.asarray(stds, dtype=means.dtype)
        num_components = means.shape[0]
        if weights is None:
            weights = jnp.ones(num_components, dtype=means.dtype)
        weights = jnp.asarray(weights, dtype=means.dtype)
        if means.ndim != 2 or stds.shape != (num_components,) or weights.shape != stds.shape:
            raise ValueError(
                "Expected means (k, d), stds (k,) and weights (k,); got "
                f"{means.shape}, {stds.shape} and {weights.shape}."
            )
        self.means = means
        self.stds = stds
        self.weights = weights / jnp.sum(weights)

    def log_prob(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """Exact log density at one point."""
        dim = self.means.shape[1]
        squared_distances = jnp.sum((x - self.means) ** 2, axis=-1)  # (k,)
        component_log_probs = (
            -0.5 * squared_distances / self.stds**2 - dim * jnp.log(self.stds) - 0.5 * dim * math.log(2.0 * math.pi)
        )
        return jax.nn.logsumexp(component_log_probs + jnp.log(self.weights))

    def sample(self, key: PRNGKeyArray, num_samples: int) -> Float[Array, "n d"]:
        """Draw `num_samples` independent points."""
        component_key, noise_key = jax.random.split(key)
        components = jax.random.categorical(component_key, jnp.log(self.weights), shape=(num_samples,))
        noise = jax.random.normal(noise_key, (num_samples, self.means.shape[1]))
        return self.means[components] + self.stds[components, None] * noise


def eight_gaussians(*, radius: int | float = 2.0, std: int | float = 0.2) -> GaussianMixture:
    """Eight equally weighted Gaussians evenly spaced on a circle about the origin."""
    num_components = 8
    angles = 2.0 * math.pi * jnp.arange(num_components, dtype=float) / num_components
    means = radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)
    return GaussianMixture(means, jnp.full(num_components, std))


def gaussian_mixture_2d() -> GaussianMixture:
    """A small 2D mixture of three Gaussians of different weights and widths.

    A clear target for Langevin sampling pictures (Song et al.'s Figure 1): a broad
    heavy mode, a medium one and a narrow light one, all inside the square [-3, 3]^2.
    """
    means = jnp.array([[-1.2, -1.0], [1.4, -0.6], [0.2, 1.5]])
    stds = jnp.array([0.55, 0.4, 0.25])
    weights = jnp.array([0.5, 0.3, 0.2])
    return GaussianMixture(means, stds, weights)
