"""Test inputs. Most are made with NumPy: building them compiles nothing, which keeps tests fast.

The hidden tests send their inputs to the student's sandboxed process, which imports this
module: a class that inputs are made of lives here, not in a hidden test's file.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from course.nn import TimeMLP, UNet
from course.schedules import VPSDE, DDPMSchedule


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


class PlausibleNoiseModel(eqx.Module):
    """A stand-in for a trained network on the default VP-SDE: the exact noise predictor
    `std(t) x` of N(0, I) data plus a small random TimeMLP. A bare random network predicts
    noise that does not grow with x, so sampling blows points up by ~exp(B(1) / 2) ~ 150 and
    the comparisons would measure round-off; this one keeps the samplers well conditioned."""

    net: TimeMLP

    def __call__(self, x, t):
        sde = VPSDE()
        integral = sde.beta_min * t + 0.5 * (sde.beta_max - sde.beta_min) * t**2
        return jnp.sqrt(-jnp.expm1(-integral)) * x + 0.1 * self.net(x, t)
