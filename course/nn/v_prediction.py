"""A noise predictor built from a network trained by v-prediction on rescaled images.

Students sample and reconstruct with a noise predictor `model(x_t, t, y) -> eps` for a DDPM
schedule in the images' own units. Galaxy images have a pixel standard deviation near 0.1,
not 1; a network trained to predict the noise of such images directly spends most of its
training at noise levels where the image is invisible, and the estimate
`x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)` multiplies its errors by up to the
noise level there. `VPredictionModel` avoids both (the same remedy as the preconditioning
of Karras et al. 2022):

- the network sees the images multiplied by `data_scale` (about one over their standard
  deviation), at the same signal-to-noise ratios: in those units the noise level
  `sqrt((1 - alpha_bar) / alpha_bar)` of step `t` is `data_scale` times larger, which
  defines `scaled_alpha_bar(t)`. The scale may differ from pixel to pixel (an array that
  broadcasts against the image), since every formula below acts on each pixel
  separately: the shipped galaxy model scales each pixel by about one over its typical
  value, so that it sees the nearly empty sky, a thousand times fainter than the
  galaxies' cores, at unit variance too;
- it predicts `v = sqrt(a) eps - sqrt(1 - a) x0` (Salimans & Ho 2022), with `a` the scaled
  alpha bar: close to the noise at low noise, to minus the image at high noise, of unit
  variance throughout;
- `__call__` turns its `v` back into the noise of the unscaled image, so the model drops
  into any DDPM sampler written for a noise predictor and the `schedule` shipped with it.

In the terms of Karras et al. (2022) this is their preconditioning with `sigma_data = 1 /
data_scale` and the network's output negated, so `denoise` also gives EDM's denoiser
`D(x; sigma)` of images noised as `x0 + sigma * n` at any noise level between the
schedule's steps, for EDM's few-step Heun sampler (`course.samplers`).
"""

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, Real

from course.schedules import noise_level


class VPredictionModel(eqx.Module):
    """`(x_t, t, y) -> eps` for the schedule `alpha_bars`, from a `network(x, t, y) -> v`
    trained on images multiplied by `data_scale` (a number, or one per pixel).

    `t` indexes `alpha_bars` (an integer step, or a float holding one) and is passed on
    to the network unchanged.
    """

    network: Callable
    alpha_bars: Float[Array, " T"]
    data_scale: float | Float[Array, "c h w"]

    def scaled_alpha_bar(self, t: Real[ArrayLike, ""]) -> tuple[Float[Array, ""], Float[Array, "*scale"]]:
        """`(alpha_bar, scaled_alpha_bar)` at step `t`: the scaled one (with the shape of
        `data_scale`) has the noise level `data_scale * sqrt((1 - alpha_bar) / alpha_bar)`."""
        alpha_bar = self.alpha_bars[jnp.asarray(t).astype(jnp.int32)]
        return alpha_bar, alpha_bar / (alpha_bar + self.data_scale**2 * (1.0 - alpha_bar))

    def network_input(self, x_t: Float[ArrayLike, "c h w"], t: Real[ArrayLike, ""]) -> Float[Array, "c h w"]:
        """`x_t` of the unscaled schedule as the network sees it (scaled images, scaled
        alpha bar)."""
        alpha_bar, scaled = self.scaled_alpha_bar(t)
        return self.data_scale * jnp.sqrt(scaled / alpha_bar) * x_t

    def v_target(
        self, x0: Float[ArrayLike, "c h w"], noise: Float[ArrayLike, "c h w"], t: Real[ArrayLike, ""]
    ) -> Float[Array, "c h w"]:
        """What the network is trained to output for the clean image `x0` noised with
        `noise` at step `t`."""
        _, scaled = self.scaled_alpha_bar(t)
        return jnp.sqrt(scaled) * noise - jnp.sqrt(1.0 - scaled) * self.data_scale * x0

    def __call__(
        self, x_t: Float[ArrayLike, "c h w"], t: Real[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None
    ) -> Float[Array, "c h w"]:
        _, scaled = self.scaled_alpha_bar(t)
        network_input = self.network_input(x_t, t)
        v = self.network(network_input, t, y)
        return jnp.sqrt(scaled) * v + jnp.sqrt(1.0 - scaled) * network_input

    def network_time(self, sigma: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """The (fractional) step whose noise level `sqrt((1 - alpha_bar) / alpha_bar)` is
        `sigma`, interpolated in `log sigma` between the schedule's steps and clipped to them."""
        levels = noise_level(self.alpha_bars)
        steps = jnp.arange(levels.shape[0], dtype=jnp.result_type(float))
        return jnp.interp(jnp.log(sigma), jnp.log(levels), steps)

    def denoise(
        self, x: Float[ArrayLike, "c h w"], sigma: Float[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None
    ) -> Float[Array, "c h w"]:
        """EDM's `D(x, sigma, y) -> x0` for `x = x0 + sigma * n`: at a step's own noise level
        it equals `x - sigma * eps` of `__call__` on `x_t = sqrt(alpha_bar) x`."""
        scaled = 1.0 / (1.0 + (self.data_scale * sigma) ** 2)
        network_input = self.data_scale * jnp.sqrt(scaled) * x
        v = self.network(network_input, self.network_time(sigma), y)
        return (jnp.sqrt(scaled) * network_input - jnp.sqrt(1.0 - scaled) * v) / self.data_scale
