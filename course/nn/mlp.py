"""A time-conditioned residual MLP for denoising or score models on low-dimensional data."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from course.nn.embeddings import sinusoidal_embedding

# Normalised times t / max_time in [0, 1] are stretched to [0, 1000] before the sinusoidal
# embedding (as for the 1000 integer steps of DDPM) so that its fast waves resolve small
# time differences while its slowest waves stay monotone over the whole range.
EMBEDDING_TIME_SCALE = 1000.0


class TimeMLP(eqx.Module):
    """Residual MLP `(x, t) -> vector of x's shape`, conditioned on time in every block.

    The time is divided by `max_time` (pass `max_time=T` for DDPM steps `0..T-1` and
    `max_time=1.0` for continuous time in [0, 1]) and embedded with `sinusoidal_embedding`
    into `emb`. After an input layer `h = W_in x + b_in`, each of the `depth` blocks does
    `h <- h + W silu(h + P emb) + b`, with its own learned projection `P` of the time
    embedding; the output is `W_out silu(h) + b_out`.
    """

    input_layer: eqx.nn.Linear
    hidden_layers: tuple[eqx.nn.Linear, ...]
    time_layers: tuple[eqx.nn.Linear, ...]
    output_layer: eqx.nn.Linear
    time_embedding_dim: int = eqx.field(static=True)
    max_time: float = eqx.field(static=True)

    def __init__(
        self,
        data_dim: int,
        *,
        hidden_dim: int = 128,
        depth: int = 3,
        time_embedding_dim: int = 32,
        max_time: int | float = 1.0,
        key: PRNGKeyArray,
    ):
        """`depth` is the number of residual blocks, each `hidden_dim` wide."""
        input_key, output_key, *block_keys = jax.random.split(key, 2 + 2 * depth)
        hidden_keys, time_keys = block_keys[:depth], block_keys[depth:]
        self.input_layer = eqx.nn.Linear(data_dim, hidden_dim, key=input_key)
        self.hidden_layers = tuple(eqx.nn.Linear(hidden_dim, hidden_dim, key=k) for k in hidden_keys)
        self.time_layers = tuple(eqx.nn.Linear(time_embedding_dim, hidden_dim, key=k) for k in time_keys)
        self.output_layer = eqx.nn.Linear(hidden_dim, data_dim, key=output_key)
        self.time_embedding_dim = time_embedding_dim
        self.max_time = float(max_time)

    def __call__(self, x: Float[Array, " d"], t: Real[ArrayLike, ""]) -> Float[Array, " d"]:
        """Evaluate at one point `x` and one time `t` (an int or a float); vmap to batch."""
        normalised_time = jnp.asarray(t).astype(x.dtype) / self.max_time
        embedding = sinusoidal_embedding(EMBEDDING_TIME_SCALE * normalised_time, self.time_embedding_dim)
        h = self.input_layer(x)
        for layer, time_layer in zip(self.hidden_layers, self.time_layers, strict=True):
            h = h + layer(jax.nn.silu(h + time_layer(embedding)))
        return self.output_layer(jax.nn.silu(h))
