"""Sinusoidal embeddings of a scalar such as a diffusion time."""

import math

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real


def sinusoidal_embedding(
    t: Real[ArrayLike, ""], dim: int, *, max_period: int | float = 10_000.0
) -> Float[Array, " dim"]:
    """Transformer-style embedding `[sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ...]`.

    The `h = dim // 2` frequencies `w_i = max_period ** (-i / h)` fall geometrically from 1
    to about `1 / max_period`, so `t` should range over roughly `[0, max_period / (2 pi)]`
    for the slowest wave not to wrap around. `dim` must be even.
    """
    if dim % 2 != 0:
        raise ValueError(f"The embedding dimension must be even, got {dim}.")
    half = dim // 2
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(float)
    frequencies = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=t.dtype) / half)
    angles = t * frequencies  # (half,)
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)])
