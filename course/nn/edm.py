"""The preconditioned denoiser of Karras et al. (2022, "Elucidating the design space of
diffusion-based generative models", EDM), and the noise predictor the exercises sample with.

EDM writes a noisy image as `x = x0 + sigma * n` (a noise level `sigma` in the image's own
units, `n` standard normal) and trains a denoiser

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma))

around a network `F`, with coefficients chosen from the data's standard deviation
`sigma_data` so that the network's input and its training target both have unit variance
at every noise level, and the network's errors are amplified as little as possible:

    c_in = 1 / sqrt(sigma^2 + sigma_data^2)
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)
    c_out = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)

Trained with the loss weight `1 / c_out^2` on `|D - x0|^2` (`loss_weight`), the network's
own squared error `|F - target|^2` counts the same at every noise level. `sigma_data` may be
one number or one per pixel (an array that broadcasts against the image): every formula acts
on each pixel separately, so a galaxy's core and the nearly empty sky around it, a thousand
times fainter, are each seen and predicted at unit variance.

`NoisePredictor` turns a denoiser into `model(x_t, t, y) -> eps` on a DDPM schedule: step `t`
with `alpha_bar` is the noise level `sigma = sqrt((1 - alpha_bar) / alpha_bar)` of
`x = x_t / sqrt(alpha_bar)`, and `eps = (x - D(x; sigma)) / sigma`. The students' samplers
and losses, written for a noise predictor, use it unchanged.
"""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, Real

from course.schedules import noise_level

# The network's time input: log sigma mapped linearly from [log NETWORK_SIGMA_RANGE[0],
# log NETWORK_SIGMA_RANGE[1]] (image units) to [0, 1000], the time scale of `course.nn.UNet`.
NETWORK_SIGMA_RANGE = (1e-3, 1e2)


def network_time(sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
    """EDM's `c_noise`: the noise level as the network's time input, affine in `log sigma`."""
    low, high = (jnp.log(s) for s in NETWORK_SIGMA_RANGE)
    return 1000.0 * (jnp.log(sigma) - low) / (high - low)


class EDMDenoiser(eqx.Module):
    """`D(x, sigma, y) -> x0` for one noisy image, from a `network(x, t, y)` (a UNet, say)
    and the data's standard deviation (a number, or one per pixel)."""

    network: Callable
    sigma_data: float | Float[Array, ""] | Float[Array, "c h w"]

    def coefficients(self, sigma: Float[ArrayLike, ""]) -> tuple[Array, Array, Array]:
        """`(c_skip, c_out, c_in)` at noise level `sigma`, each with the shape of `sigma_data`."""
        total = sigma**2 + jnp.asarray(self.sigma_data) ** 2
        return self.sigma_data**2 / total, sigma * self.sigma_data / jnp.sqrt(total), 1.0 / jnp.sqrt(total)

    def loss_weight(self, sigma: Float[ArrayLike, ""]) -> Float[Array, "*pixels"]:
        """EDM's `lambda(sigma) = 1 / c_out^2`: the weight on `|D - x0|^2` that makes the
        network's own error count alike at every noise level."""
        _, c_out, _ = self.coefficients(sigma)
        return 1.0 / c_out**2

    def __call__(
        self, x: Float[ArrayLike, "c h w"], sigma: Float[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None
    ) -> Float[Array, "c h w"]:
        sigma = jnp.asarray(sigma, jnp.result_type(x))
        c_skip, c_out, c_in = self.coefficients(sigma)
        return c_skip * x + c_out * self.network(c_in * x, network_time(sigma), y)


class NoisePredictor(eqx.Module):
    """`(x_t, t, y) -> eps` for the DDPM schedule `alpha_bars`, from a denoiser
    `denoiser(x, sigma, y) -> x0` of images noised as `x0 + sigma * n`.

    `t` indexes `alpha_bars` (an integer step, or a float holding one).
    """

    denoiser: Callable
    alpha_bars: Float[Array, " T"]

    def __call__(
        self, x_t: Float[ArrayLike, "c h w"], t: Real[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None
    ) -> Float[Array, "c h w"]:
        alpha_bar = self.alpha_bars[jnp.asarray(t).astype(jnp.int32)]
        x = x_t / jnp.sqrt(alpha_bar)
        sigma = noise_level(alpha_bar)
        return (x - self.denoiser(x, sigma, y)) / sigma
