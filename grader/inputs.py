"""Test inputs made with NumPy: building them compiles nothing, which keeps tests fast."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import numpy as np


def with_numpy_weights(abstract, rng: np.random.Generator):
    """A model shaped like `abstract` (from `eqx.filter_eval_shape`), its Linear layers drawn
    like equinox's default initialisation, U(-1/sqrt(in), 1/sqrt(in)), but with NumPy."""

    def fill(layer):
        if isinstance(layer, jax.ShapeDtypeStruct):
            raise TypeError("only Linear layers should hold arrays here")
        if not isinstance(layer, eqx.nn.Linear):
            return layer  # e.g. an activation function
        limit = 1 / math.sqrt(layer.weight.shape[1])
        draw = lambda shape: jax.device_put(rng.uniform(-limit, limit, size=shape).astype(np.float32))
        return eqx.tree_at(lambda l: (l.weight, l.bias), layer, (draw(layer.weight.shape), draw(layer.bias.shape)))

    return jax.tree.map(fill, abstract, is_leaf=lambda x: isinstance(x, eqx.nn.Linear))


def normals(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Standard normal float32 test inputs."""
    return rng.normal(size=shape).astype(np.float32)
