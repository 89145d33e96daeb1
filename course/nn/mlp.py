"""A time-conditioned MLP for denoising or score models on low-dimensional data."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Real

from course.nn.embeddings import sinusoidal_embedding

# Normalised times t / max_time in [0, 1] are stretched to [0, 1000] before the sinusoidal
# embedding (as for the 1000 integer steps of DDPM) so that its fast waves resolve small
# time differences while its slowest waves stay monotone over the whole range.
EMBEDDING_TIME_SCALE = 1000.0


class TimeMLP(eqx.Module):
    """MLP `(x, t) -> output of x's shape`, with time injected into every hidden layer.

    The time is divided by `max_time` (so pass `max_time=T` for DDPM steps `0..T-1` and
    `max_time=1.0` for continuous time in [0, 1]) and embedded with `sinusoidal_embedding`.
    Each hidden layer adds a learned projection of that embedding to its pre-activation:
    `h <- W h + b + P emb`, with SiLU activations between layers.
    """

    input_layer: eqx.nn.Linear
    hidden_layers: tuple[eqx.nn.Linear, ...]
    time_layers: tuple[eqx.nn.Linear, ...]
    output_layer: eqx.nn.Linear
    data_dim: int = eqx.field(static=True)
    time_embedding_dim: int = eqx.field(static=True)
    max_time: float = eqx.field(static=True)

    def __init__(
        self,
        data_dim: int,
        *,
        hidden_dim: int = 128,
        depth: int = 3,
        time_embedding_dim: int = 32,
        max_time: float = 1.0,
        key: PRNGKeyArray,
    ):
        """`depth` is the number of hidden layers (at least 1), each `hidden_dim` wide."""
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}.")
        input_key, output_key, *layer_keys = jax.random.split(key, 1 + 2 * depth)
        hidden_keys, time_keys = layer_keys[: depth - 1], layer_keys[depth - 1 :]
        self.input_layer = eqx.nn.Linear(data_dim, hidden_dim, key=input_key)
        self.hidden_layers = tuple(
            eqx.nn.Linear(hidden_dim, hidden_dim, key=k) for k in hidden_keys
        )
        self.time_layers = tuple(
            eqx.nn.Linear(time_embedding_dim, hidden_dim, key=k) for k in time_keys
        )
        self.output_layer = eqx.nn.Linear(hidden_dim, data_dim, key=output_key)
        self.data_dim = data_dim
        self.time_embedding_dim = time_embedding_dim
        self.max_time = float(max_time)

    def __call__(
        self, x: Float[Array, " d"], t: Real[Array, ""] | float | int
    ) -> Float[Array, " d"]:
        """Evaluate at one point `x` and one time `t` (an int or a float); vmap to batch."""
        normalised_time = jnp.asarray(t, dtype=x.dtype) / self.max_time
        embedding = sinusoidal_embedding(
            EMBEDDING_TIME_SCALE * normalised_time, self.time_embedding_dim
        )
        h = self.input_layer(x) + self.time_layers[0](embedding)
        for layer, time_layer in zip(self.hidden_layers, self.time_layers[1:], strict=True):
            h = layer(jax.nn.silu(h)) + time_layer(embedding)
        return self.output_layer(jax.nn.silu(h))
