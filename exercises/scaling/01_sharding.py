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

check = exercise_checks("scaling/01_sharding", globals())

# %% [markdown]
# # Scaling 1: meshes, shardings and `shard_map`
#
# A model that no longer fits one device's memory, or a batch that takes too long on one
# device, is split over several. JAX describes the split with three objects:
#
# - a **mesh**: the devices laid out on a grid with named axes, `jax.make_mesh((8,), ("data",))`;
# - a **partition spec** `P(...)`: for each axis of an array, the mesh axis it is split
#   over (`P("data")`: the first axis split over `"data"`, the others whole; `P()`: the
#   whole array on every device, *replicated*);
# - a **sharding** `NamedSharding(mesh, spec)`, which the array carries with it.
#
# With sharded inputs, a `jax.jit`-compiled function runs on all devices at once: the
# compiler decides what each device computes and which data they exchange. When you want
# to say that yourself, `jax.shard_map` runs a function on each device's *block* and lets
# you call the *collectives* (`psum`, `pmean`, `all_gather`) explicitly.
#
# A laptop has one CPU, but JAX can split it into several simulated devices. That must
# happen before JAX computes anything (it fixes its devices then), so the first code cell
# asks for 8. Everything here runs unchanged on 8 GPUs or TPU cores.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Functions receive the mesh to use
# as an argument. Check your work with `uv run pytest exercises/scaling/test_01_sharding.py`
# or `uv run grader status`.

# %%
import jax

from course.devices import simulate_cpu_devices

simulate_cpu_devices(8)  # first, before any JAX computation

import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, PyTree

# %%
print(jax.devices())
mesh = jax.make_mesh((8,), ("data",))
print(mesh)

# %% [markdown]
# ## Exercise 1: shard a batch over a mesh axis
#
# Data parallelism starts by giving each device a slice of the batch. With a mesh axis
# of size 8, a batch of 64 examples becomes 8 blocks of 8 consecutive examples, block $i$
# on the $i$-th device along that axis. Any other mesh axis holds copies.
#
# Write `shard_batch(batch, mesh, axis)` for a batch that is a pytree of arrays (a tuple
# `(inputs, targets)`, say) sharing their leading axis: put every leaf on the mesh, split
# along its first axis over the mesh axis named `axis`, its other axes whole. The values
# must not change. `jax.device_put(x, sharding)` moves an array (or every leaf of a pytree)
# to where a sharding says.

# %% nbgrader={"grade": false, "grade_id": "shard_batch", "locked": false, "schema_version": 3, "solution": true, "task": false}
def shard_batch(batch: PyTree[Float[Array, "batch ..."]], mesh: jax.sharding.Mesh, axis: str = "data") -> PyTree:
    """Every leaf of `batch` on `mesh`, its first axis split over the mesh axis `axis`."""
    # Hint: NamedSharding(mesh, P(axis)); a spec shorter than the array leaves the other axes whole.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'shard_batch' is not done yet: replace this line with your code.")


# %%
check("shard_batch")

# %% [markdown]
# Where each row went: 16 rows over 8 devices, two rows each.

# %%
inputs = shard_batch(np.arange(32.0, dtype=np.float32).reshape(16, 2), mesh)
print(inputs.sharding)
jax.debug.visualize_array_sharding(inputs)
for shard in inputs.addressable_shards[:3]:
    print(shard.device, shard.index, shard.data.tolist())

# %% [markdown]
# On a 4 x 2 mesh, the batch is split in 4 along `"data"` and each block is kept on both
# devices of its `"model"` row. Functions of sharded arrays keep working, and `jit` keeps
# the result sharded where it can:

# %%
mesh_2d = jax.make_mesh((4, 2), ("data", "model"))
inputs_2d = shard_batch(np.arange(32.0, dtype=np.float32).reshape(16, 2), mesh_2d)
jax.debug.visualize_array_sharding(inputs_2d)
doubled = jax.jit(lambda x: 2 * x)(inputs_2d)
print(doubled.sharding.spec, float(jnp.sum(doubled)))

# %% [markdown]
# ## Exercise 2: a matrix product with an explicit `psum`
#
# In $y = x\,w$ with $x$ of shape `(n, k)` and $w$ of shape `(k, m)`, split the
# contracted axis $k$ in blocks over the devices: device $i$ holds the columns $x_i$ of
# $x$ and the rows $w_i$ of $w$, and
#
# $$x\,w = \sum_i x_i\, w_i .$$
#
# Each device computes its own product $x_i w_i$, a full `(n, m)` array, and a **psum**
# (an all-reduce: every device gets the sum over the mesh axis) adds them up. This is
# how a layer too large for one device is split ("tensor parallelism").
#
# Write `sharded_matmul(x, w, mesh)` with `jax.shard_map(f, mesh=mesh, in_specs=...,
# out_specs=...)`: `f` sees each device's blocks, `in_specs` says how each input is split
# (`P(None, "data")`: the columns over `"data"`), and `out_specs=P()` says the result is
# the same on every device, which the `psum` guarantees. Move `x` and `w` to those
# shardings first (`jax.device_put`), since `shard_map` wants its inputs already sharded as
# `in_specs` says. `k` is a multiple of the mesh axis `"data"`.

# %% nbgrader={"grade": false, "grade_id": "sharded_matmul", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sharded_matmul(x: Float[Array, "n k"], w: Float[Array, "k m"], mesh: jax.sharding.Mesh) -> Float[Array, "n m"]:
    """x @ w with k split over the mesh axis "data": a local product per device, then a psum."""
    # Hint: inside f, jax.lax.psum(x_block @ w_block, "data").
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'sharded_matmul' is not done yet: replace this line with your code.")


# %%
check("sharded_matmul")

# %% [markdown]
# Equal to the product on one device, up to the order of the sums:

# %%
x = np.random.default_rng(0).normal(size=(4, 64)).astype(np.float32)
w = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
y = sharded_matmul(x, w, mesh)
print(y.sharding.spec, float(jnp.max(jnp.abs(y - x @ w))))

# %% [markdown]
# In the program, `shard_map` holds what one device does (a product of its blocks, shapes
# divided by 8) and the collective:

# %%
print(jax.make_jaxpr(sharded_matmul, static_argnums=2)(x, w, mesh))
