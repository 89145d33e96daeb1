# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %%
# Set-up: installs the course where it is missing (Colab), and makes `check("exercise")`,
# which runs that exercise's visible checks here in the notebook.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("course") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    os.environ.get("COURSE_PIP_SOURCE", "jax-genai-course")], check=True)

from grader.notebook_checks import exercise_checks

check = exercise_checks("scaling/02_data_parallel", globals())

# %% [markdown]
# # Scaling 2: data-parallel training
#
# **Data parallelism** is the first thing to try when training is too slow: every device
# holds a full copy of the parameters (they are *replicated*), gets its own slice of each
# batch, computes the gradient of its slice, and the gradients are averaged over the
# devices (an all-reduce) so that all copies take the same step. For a loss that is a mean
# over the examples, the average of the slices' gradients *is* the gradient of the whole
# batch: the step is the single-device step, computed by 8 devices.
#
# There are two ways to write it in JAX, and you will write both:
#
# 1. **automatic**: place the parameters (replicated) and the batch (sharded), and
#    `jax.jit` the usual step. The compiler sees the shardings, splits the work and
#    inserts the all-reduce itself.
# 2. **explicit**: `jax.shard_map` the per-device computation and call the collective
#    (`jax.lax.pmean`) yourself, as one would with MPI.
#
# Finally the course's own training loop, `course.training.train`, does the same with
# `data_parallel=True`; the README says how the same script runs on several machines.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Functions receive the mesh to use
# as an argument; its data axis is called `"data"`. Check your work with
# `uv run pytest exercises/scaling/test_02_data_parallel.py` or `uv run grader status`.

# %%
import jax

from course.devices import simulate_cpu_devices

simulate_cpu_devices(8)  # first, before any JAX computation

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, PyTree

from course import training

# %% [markdown]
# A small problem to train: a two-layer network fitting noisy samples of $\sin(3x)$.
# The loss is a **mean** over the examples of the batch.

# %%
def init_params(key, hidden=32):
    k1, k2 = jax.random.split(key)
    return {"w1": jax.random.normal(k1, (1, hidden)), "b1": jnp.zeros(hidden),
            "w2": jax.random.normal(k2, (hidden, 1)) / jnp.sqrt(hidden), "b2": jnp.zeros(1)}


def mse_loss(params, batch):
    x, y = batch  # (B, 1), (B, 1)
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


x_data = np.linspace(-2, 2, 512, dtype=np.float32)[:, None]
y_data = np.sin(3 * x_data) + 0.1 * np.random.default_rng(0).normal(size=x_data.shape).astype(np.float32)
mesh = jax.make_mesh((8,), ("data",))

# %% [markdown]
# ## Exercise 1: a data-parallel step, the automatic way
#
# Write `data_parallel_step(loss_fn, params, batch, mesh, learning_rate)` that takes one
# step of gradient descent, $\theta \leftarrow \theta - \eta\, \nabla_\theta L(\theta, \text{batch})$,
# and returns `(new_params, loss)`, the loss at the old parameters.
#
# - Replicate `params` (any pytree) over the mesh: `NamedSharding(mesh, P())`. They may
#   arrive on one device only.
# - Shard `batch` (a pytree of arrays with a leading batch axis) over the mesh axis
#   `"data"`.
# - Compute the loss and gradient with `jax.jit(jax.value_and_grad(loss_fn))` and update
#   with `jax.tree.map`. The new parameters come out replicated: every device holds them.

# %% nbgrader={"grade": false, "grade_id": "data_parallel_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def data_parallel_step(
    loss_fn: Callable[[PyTree, PyTree], Float[Array, ""]],
    params: PyTree,
    batch: PyTree[Float[Array, "batch ..."]],
    mesh: jax.sharding.Mesh,
    learning_rate: float,
) -> tuple[PyTree, Float[Array, ""]]:
    """One gradient-descent step on `batch`, split over the mesh axis "data"; params replicated."""
    # Hint: jax.device_put(tree, NamedSharding(mesh, spec)) places every leaf of a pytree.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'data_parallel_step' is not done yet: replace this line with your code.")


# %%
check("data_parallel_step")

# %% [markdown]
# One step on 8 devices and one step on a single device agree to rounding:

# %%
params = init_params(jax.random.key(0))
batch = (x_data[:64], y_data[:64])
sharded_params, sharded_loss = data_parallel_step(mse_loss, params, batch, mesh, 0.1)
loss, grads = jax.value_and_grad(mse_loss)(params, batch)
print(float(sharded_loss), float(loss))
print(sharded_params["w1"].sharding.spec, float(jnp.max(jnp.abs(sharded_params["w1"] - (params["w1"] - 0.1 * grads["w1"])))))

# %% [markdown]
# The compiled program of the step holds the all-reduce that the compiler inserted
# (look for `all-reduce` in its HLO):

# %%
placed = (jax.device_put(params, NamedSharding(mesh, P())), jax.device_put(batch, NamedSharding(mesh, P("data"))))
hlo = jax.jit(jax.value_and_grad(mse_loss)).lower(*placed).compile().as_text()
print([line.strip()[:100] for line in hlo.splitlines() if "all-reduce(" in line][:3])

# %% [markdown]
# ## Exercise 2: the same step with `shard_map` and `pmean`
#
# Now write the per-device program yourself. Write
# `shard_map_value_and_grad(loss_fn, params, batch, mesh)` returning `(loss, grads)` of
# the whole batch, like `jax.value_and_grad(loss_fn)(params, batch)`:
#
# - a function `global_loss(params, batch)` runs `jax.shard_map` over the mesh: each
#   device gets the replicated `params` (`in_specs` `P()`) and its slice of `batch`
#   (`P("data")`), computes `loss_fn` of its slice, and `jax.lax.pmean(loss, "data")`
#   averages the devices' losses, so every device ends with the same value (`out_specs` `P()`);
# - `jax.jit(jax.value_and_grad(global_loss))(params, batch)` gives the loss and the gradients.
#
# Because `loss_fn` is a mean over the examples and the slices have equal sizes, the mean
# of the slices' losses is the loss of the whole batch, and so are the gradients.
#
# Where is the all-reduce of the gradients? Inside `shard_map`, JAX tracks which values
# may differ between devices. `params` come in the same on every device, so their gradient
# must be the same everywhere too: differentiating, JAX sums the devices' contributions
# with a `psum` of its own (the transpose of the `pmean`'s broadcast). Had you called
# `jax.grad` *inside* the `shard_map`, that sum would already be in each device's gradient,
# and a `pmean` of the gradients would do nothing. As in the first notebook, `device_put`
# the inputs to the shardings of `in_specs` first.

# %% nbgrader={"grade": false, "grade_id": "shard_map_value_and_grad", "locked": false, "schema_version": 3, "solution": true, "task": false}
def shard_map_value_and_grad(
    loss_fn: Callable[[PyTree, PyTree], Float[Array, ""]],
    params: PyTree,
    batch: PyTree[Float[Array, "batch ..."]],
    mesh: jax.sharding.Mesh,
) -> tuple[Float[Array, ""], PyTree]:
    """(loss, grads) of `loss_fn` on the whole batch: per-device losses averaged with pmean."""
    # Hint: def per_device(params, local_batch): return jax.lax.pmean(loss_fn(params, local_batch), "data")
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'shard_map_value_and_grad' is not done yet: replace this line with your code.")


# %%
check("shard_map_value_and_grad")

# %% [markdown]
# The same loss and gradients as on one device, and the program shows the collectives:
# the `psum` of the losses (a `pmean` is a `psum` divided by the number of devices), and
# in the backward pass the `psum` of the gradients.

# %%
loss_8, grads_8 = jax.jit(shard_map_value_and_grad, static_argnums=(0, 3))(mse_loss, params, batch, mesh)
print(float(loss_8), float(loss), float(jnp.max(jnp.abs(grads_8["w1"] - grads["w1"]))))
jaxpr = str(jax.make_jaxpr(shard_map_value_and_grad, static_argnums=(0, 3))(mse_loss, params, batch, mesh))
print([line.strip()[:60] for line in jaxpr.splitlines() if "psum" in line])

# %% [markdown]
# ## The course's training loop, data-parallel
#
# `course.training.train` draws a batch per step inside one compiled `lax.scan`. With
# `data_parallel=True` it replicates the model and optimizer state over all devices and
# splits each batch along its first axis, exactly as in Exercise 1; the steps are those of
# the single-device loop, up to rounding. A model here is an equinox module, so we wrap
# the network in `eqx.nn.MLP` and train both ways from the same key:

# %%
def mlp_loss(model, batch, key):
    del key
    x, y = batch
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


model = eqx.nn.MLP(1, 1, 32, 2, activation=jnp.tanh, key=jax.random.key(1))
common = dict(key=jax.random.key(2), num_steps=1000, batch_size=64, learning_rate=1e-2, progress=False)
model_1, losses_1 = training.train(mlp_loss, model, (x_data, y_data), **common)
model_8, losses_8 = training.train(mlp_loss, model, (x_data, y_data), data_parallel=True, **common)
print("largest difference of the losses:", float(jnp.max(jnp.abs(losses_8 - losses_1))))
print("devices holding the trained weights:", len(model_8.layers[0].weight.sharding.device_set))

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].semilogy(losses_1, label="1 device")
axes[0].semilogy(losses_8, "--", label="8 devices")
axes[0].set_xlabel("step")
axes[0].legend()
axes[1].plot(x_data, y_data, ".", alpha=0.3, label="data")
axes[1].plot(x_data, jax.vmap(model_8)(x_data), label="trained on 8 devices")
axes[1].legend();

# %% [markdown]
# On one machine with real accelerators, the same call splits the batches over its GPUs.
# On several machines, start the same script on each after `jax.distributed.initialize()`
# (see the README): `jax.devices()` then lists every machine's devices, and
# `data_parallel=True` splits each batch over all of them.
