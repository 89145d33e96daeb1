"""A generic minibatch training loop for equinox models, fast on a laptop CPU.

Set the environment variable `COURSE_QUICK=1` to cap training at a few steps, so that
notebooks run top to bottom in seconds (in CI, say); results are then meaningless.

`train(..., data_parallel=True)` runs the same loop data-parallel over every device
JAX sees: parameters and optimizer state replicated, each batch split along its first
axis. Started with `jax.distributed.initialize()` on each of several hosts, the same
call trains over all their devices (see docs/students.md).
"""

import os
from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, ArrayLike, Float, Key, PRNGKeyArray, PyTree, Shaped
from tqdm.auto import tqdm

QUICK_MODE_MAX_STEPS = 50

Model = TypeVar("Model")


def quick_mode() -> bool:
    """Whether `COURSE_QUICK` is set to anything but `""` or `"0"`: shorten all training."""
    return os.environ.get("COURSE_QUICK", "") not in ("", "0")


@eqx.filter_jit
def _train_chunk(
    params: PyTree,
    static: PyTree,
    opt_state: optax.OptState,
    data: PyTree[Shaped[Array, "n ..."]],
    keys: Key[Array, " steps"],
    loss_fn: Callable[[Any, PyTree, PRNGKeyArray], Float[Array, ""]],
    optimizer: optax.GradientTransformation,
    batch_size: int,
    batch_sharding: NamedSharding | None,
) -> tuple[PyTree, optax.OptState, Float[Array, " steps"]]:
    """Run one optimisation step per key, inside `lax.scan`; `batch_sharding` splits each batch."""
    num_examples = jax.tree.leaves(data)[0].shape[0]

    def loss_of_params(params, batch, key):
        return loss_fn(eqx.combine(params, static), batch, key)

    def step(carry, key):
        params, opt_state = carry
        batch_key, loss_key = jax.random.split(key)
        indices = jax.random.randint(batch_key, (batch_size,), 0, num_examples)
        batch = jax.tree.map(lambda leaf: leaf[indices], data)
        if batch_sharding is not None:  # each device gets its slice; XLA sums the gradients
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        loss, grads = jax.value_and_grad(loss_of_params)(params, batch, loss_key)
        # Optax mixes its integer step count with floats, which strict promotion forbids.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        return (params, opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), keys)
    return params, opt_state, losses


def train(
    loss_fn: Callable[[Model, PyTree, PRNGKeyArray], Float[Array, ""]],
    model: Model,
    data: PyTree[Shaped[ArrayLike, "n ..."]],
    *,
    key: PRNGKeyArray,
    num_steps: int,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    steps_per_call: int = 100,
    progress: bool = True,
    data_parallel: bool = False,
) -> tuple[Model, Float[Array, " num_steps"]]:
    """Minimise `loss_fn(model, batch, key)` over minibatches of `data`; return the trained
    model and the loss at every step.

    Each step draws `batch_size` examples uniformly at random with replacement from `data`
    (an array, or a pytree of arrays sharing their leading axis `n`) and a fresh key for the
    loss. The default optimizer is Adam with a learning rate decaying from `learning_rate`
    to zero along a cosine over `num_steps`; `learning_rate` is ignored when `optimizer` is
    given. The inexact arrays of `model` are trained, everything else is kept fixed.

    Steps run `steps_per_call` at a time inside one compiled `lax.scan`; a tqdm bar shows
    the mean loss of the last call. In quick mode (`quick_mode()`), `num_steps` is capped at
    `QUICK_MODE_MAX_STEPS` (50) so that notebooks finish in seconds.

    With `data_parallel=True`, the steps are the same but run over all of `jax.devices()`
    (after `jax.distributed.initialize()`, every host's): the data, parameters and
    optimizer state are replicated on every device, and each batch is split along its first
    axis, so `batch_size` must be a multiple of the number of devices. Up to the order of
    floating-point sums, the result is the single-device one.
    """
    if quick_mode():
        num_steps = min(num_steps, QUICK_MODE_MAX_STEPS)
    if num_steps < 1 or steps_per_call < 1:
        raise ValueError("num_steps and steps_per_call must be positive.")
    if optimizer is None:
        optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))

    data = jax.tree.map(jnp.asarray, data)  # NumPy data moves to the device once
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    batch_sharding = None
    if data_parallel:
        params, opt_state, data, batch_sharding = _replicate(params, opt_state, data, batch_size)
    step_keys = jax.random.split(key, num_steps)
    losses = []
    with tqdm(total=num_steps, disable=not progress, desc="training") as bar:
        for start in range(0, num_steps, steps_per_call):
            chunk_keys = step_keys[start : start + steps_per_call]
            params, opt_state, chunk_losses = _train_chunk(
                params, static, opt_state, data, chunk_keys, loss_fn, optimizer, batch_size, batch_sharding
            )
            losses.append(chunk_losses)
            bar.update(chunk_keys.shape[0])
            if progress:
                bar.set_postfix(loss=f"{float(jnp.mean(chunk_losses)):.4g}")
    return eqx.combine(params, static), jnp.concatenate(losses)


def _replicate(params: PyTree, opt_state: optax.OptState, data: PyTree, batch_size: int):
    """Everything replicated over a one-axis mesh of all devices, and the sharding of a batch."""
    mesh = jax.make_mesh((jax.device_count(),), ("batch",), axis_types=(AxisType.Auto,))
    if batch_size % mesh.size:
        raise ValueError(f"data_parallel: batch_size {batch_size} is not a multiple of the {mesh.size} devices.")
    replicated = NamedSharding(mesh, P())
    params, opt_state, data = jax.device_put((params, opt_state, data), replicated)
    return params, opt_state, data, NamedSharding(mesh, P("batch"))
