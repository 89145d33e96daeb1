"""Few-step sampling from a denoiser: the time steps and the 2nd-order (Heun) sampler of
Karras et al. (2022, EDM, their Algorithm 2), with optional stochastic churn.

A denoiser `D(x, sigma, y) -> x0` (`course.nn.edm.EDMDenoiser`) defines the probability-flow
ODE `dx / dsigma = (x - D(x; sigma)) / sigma`, integrated from pure noise at `sigma_max` down
to 0. Heun's method takes each step twice as accurately as Euler's for one more network
evaluation, so about 20 steps (39 evaluations) do what hundreds of ancestral steps do.

`heun_sample` loops over the steps in Python and runs each as one compiled call for the
whole batch: on a CPU, XLA runs a network inside a compiled loop or branch (`jax.lax.scan`,
`jax.lax.cond`) about eight times slower than the same network called step by step
(jax issue #12868).
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Float[Array, " levels"]:
    """`num_steps` noise levels from `sigma_max` down to `sigma_min`, evenly spaced in
    `sigma ** (1 / rho)` (EDM's eq. 5: with `rho = 7` the steps crowd towards low noise),
    followed by a final 0."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}.")
    fraction = jnp.arange(num_steps) / max(num_steps - 1, 1)
    inverse_rho = 1.0 / rho
    sigmas = (sigma_max**inverse_rho + fraction * (sigma_min**inverse_rho - sigma_max**inverse_rho)) ** rho
    return jnp.concatenate([sigmas, jnp.zeros(1)])


def network_evaluations(num_steps: int) -> int:
    """How many times `heun_sample` calls the denoiser with `num_steps` noise levels: twice
    per step but for the last one (down to 0), which is an Euler step."""
    return 2 * num_steps - 1


def heun_step(
    denoiser: Callable,
    x: Float[Array, "*shape"],
    sigma: Float[Array, ""],
    sigma_next: Float[Array, ""],
    y: Int[Array, ""] | None = None,
    noise: Float[Array, "*shape"] | None = None,
    gamma: float = 0.0,
    *,
    last: bool = False,
) -> Float[Array, "*shape"]:
    """One step of one image from `sigma` to `sigma_next`: first raise the noise level to
    `sigma * (1 + gamma)` by adding `noise` (the churn; none without `noise`), then a Heun
    step, or an Euler step if it is the `last` (to `sigma_next = 0`, where the Heun
    correction would divide by 0)."""
    raised = sigma * (1.0 + gamma)
    if noise is not None:
        x = x + jnp.sqrt(raised**2 - sigma**2) * noise
    slope = (x - denoiser(x, raised, y)) / raised
    euler = x + (sigma_next - raised) * slope
    if last:
        return euler
    next_slope = (euler - denoiser(euler, sigma_next, y)) / sigma_next
    return x + (sigma_next - raised) * 0.5 * (slope + next_slope)


@eqx.filter_jit
def _batch_step(denoiser, x, sigma, sigma_next, labels, noise, gamma, last):
    step = lambda x, y, noise: heun_step(denoiser, x, sigma, sigma_next, y, noise, gamma, last=last)
    return jax.vmap(step, in_axes=(0, None if labels is None else 0, None if noise is None else 0))(x, labels, noise)


def heun_sample(
    denoiser: Callable,
    key: PRNGKeyArray,
    num_images: int,
    image_shape: tuple[int, int, int],
    sigmas: Float[Array, " levels"],
    labels: Int[Array, " n"] | None = None,
    *,
    churn: float = 0.0,
    churn_range: tuple[float, float] = (0.0, float("inf")),
    churn_noise: float = 1.0,
) -> Float[Array, "n c h w"]:
    """`num_images` images of `image_shape` sampled by EDM's Heun sampler along `sigmas`
    (`karras_sigmas`, ending at 0), image `i` with class label `labels[i]` (none if `labels`
    is None).

    `churn` (EDM's `S_churn`) adds fresh noise before each step whose noise level lies in
    `churn_range`, raising it by a factor `1 + min(churn / n, sqrt(2) - 1)` (`churn_noise`:
    `S_noise`, the noise's standard deviation); 0 gives the deterministic ODE sampler.
    """
    num_steps = sigmas.shape[0] - 1
    batch_shape = (num_images, *image_shape)
    gamma = min(churn / num_steps, 2**0.5 - 1.0)
    init_key, *step_keys = jax.random.split(key, num_steps + 1)
    x = sigmas[0] * jax.random.normal(init_key, batch_shape)
    for i in range(num_steps):
        churned = churn > 0 and churn_range[0] <= float(sigmas[i]) <= churn_range[1]
        noise = churn_noise * jax.random.normal(step_keys[i], batch_shape) if churned else None
        x = _batch_step(denoiser, x, sigmas[i], sigmas[i + 1], labels, noise, gamma if churned else 0.0,
                        i == num_steps - 1)
    return x
