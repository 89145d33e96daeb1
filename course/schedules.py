"""Noise schedules: the discrete DDPM schedule and the continuous variance-preserving SDE."""

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real


def _as_float(t: Real[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    t = jnp.asarray(t)
    return t if jnp.issubdtype(t.dtype, jnp.floating) else t.astype(float)


def noise_level(alpha_bar: Float[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
    """The noise level `sqrt((1 - alpha_bar) / alpha_bar)` of a step with `alpha_bar`: the
    noise's standard deviation in `x_t / sqrt(alpha_bar) = x0 + sigma * n` (EDM's `sigma`)."""
    alpha_bar = jnp.asarray(alpha_bar)
    return jnp.sqrt((1.0 - alpha_bar) / alpha_bar)


class DDPMSchedule(eqx.Module):
    """Variances `betas[t]` of the `T` DDPM noising steps, indexed `t = 0, ..., T - 1`.

    `alphas = 1 - betas` and `alpha_bars[t] = alphas[0] * ... * alphas[t]`, the fraction of
    signal variance left after steps `0..t`. Build one with `DDPMSchedule.linear(...)`,
    `DDPMSchedule.cosine(...)` or from any betas with `DDPMSchedule(betas)`.
    """

    betas: Float[Array, " T"]
    alphas: Float[Array, " T"]
    alpha_bars: Float[Array, " T"]

    def __init__(self, betas: Float[ArrayLike, " T"]):
        betas = jnp.asarray(betas)
        if betas.ndim != 1:
            raise ValueError(f"betas must be one-dimensional, got shape {betas.shape}.")
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bars = jnp.cumprod(self.alphas)

    @property
    def num_steps(self) -> int:
        """The number of noising steps `T`."""
        return self.betas.shape[0]

    @classmethod
    def linear(cls, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "DDPMSchedule":
        """Betas linear from `beta_start` to `beta_end` (Ho et al. 2020)."""
        return cls(jnp.linspace(beta_start, beta_end, num_steps))

    @classmethod
    def cosine(cls, num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "DDPMSchedule":
        """The cosine schedule of Nichol & Dhariwal (2021).

        `alpha_bars[t] = f(t + 1) / f(0)` with `f(u) = cos((u / T + s) / (1 + s) * pi / 2)^2`,
        except that each beta is clipped at `max_beta` to avoid a singular last step.
        """
        u = jnp.arange(num_steps + 1) / num_steps
        f = jnp.cos((u + s) / (1.0 + s) * (math.pi / 2.0)) ** 2
        betas = 1.0 - f[1:] / f[:-1]
        return cls(jnp.minimum(betas, max_beta))


class VPSDE(eqx.Module):
    """The variance-preserving SDE `dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW` on `[0, 1]`.

    `beta(t)` grows linearly from `beta_min` at `t = 0` to `beta_max` at `t = 1`
    (Song et al. 2021, the continuous limit of the linear DDPM schedule).
    """

    beta_min: int | float = eqx.field(static=True, default=0.1)
    beta_max: int | float = eqx.field(static=True, default=20.0)

    def beta(self, t: Real[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """The noise rate at time(s) `t`."""
        return self.beta_min + _as_float(t) * (self.beta_max - self.beta_min)

    def drift(self, x: Float[Array, " d"], t: Real[ArrayLike, ""]) -> Float[Array, " d"]:
        """Forward drift `f(x, t) = -beta(t) x / 2` at one point."""
        return -0.5 * self.beta(t) * x

    def diffusion(self, t: Real[ArrayLike, "*batch"]) -> Float[Array, "*batch"]:
        """Forward diffusion coefficient `g(t) = sqrt(beta(t))`."""
        return jnp.sqrt(self.beta(t))
