"""Test inputs. Most are made with NumPy: building them compiles nothing, which keeps tests fast."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import numpy as np

from course.nn import UNet
from course.schedules import DDPMSchedule


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


def tiny_unet(rng: np.random.Generator, num_classes: int = 0) -> UNet:
    """A `course.nn.UNet` with random weights for 1-channel images of side a multiple of 2
    (two levels of 4 and 8 channels), class-conditional when `num_classes > 0`."""
    key = jax.random.key(int(rng.integers(2**31)))
    return UNet(1, (4, 8), embedding_dim=8, groups=2, num_classes=num_classes, key=key)


_cosine_schedule = jax.jit(DDPMSchedule.cosine, static_argnums=(0, 1))  # compiled once per length and offset


def random_cosine_schedule(rng: np.random.Generator, num_steps: int) -> DDPMSchedule:
    """The course's cosine schedule of `num_steps` steps, with a random offset `s`."""
    return _cosine_schedule(num_steps, float(rng.uniform(0.004, 0.02)))
