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

check = exercise_checks("warmup/02_transformations", globals())

# %% [markdown]
# # Warm-up 2: loops, batches and pytrees
#
# JAX's power comes from *transformations*: functions that take a function and return
# a new one. This notebook uses three of them on the kind of code every training loop
# needs:
#
# - `jax.lax.scan` compiles a loop with a carried state into **one** loop in the program
#   (a Python `for` loop under `jit` is unrolled: one copy of the body per step);
# - `jax.vmap` turns a function of one example into a function of a batch;
# - `jax.tree.map` applies a function to every array of a **pytree**: nested lists,
#   tuples and dicts of arrays, like a model's parameters.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Check your work with
# `uv run pytest exercises/warmup/test_02_transformations.py` or `uv run grader status`.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from jaxtyping import Array, Float, PyTree

# %% [markdown]
# ## Exercise 1: an exponential moving average with `lax.scan`
#
# An exponential moving average smooths a sequence $x_0, x_1, \dots$ (training curves,
# or the EMA of a diffusion model's weights):
#
# $$m_t = \beta\, m_{t-1} + (1 - \beta)\, x_t, \qquad m_{-1} = 0.$$
#
# Write `ema(xs, decay)` for `xs` of shape `(steps, ...)` (any trailing shape) that returns
# all of $m_0, \dots, m_{T-1}$, stacked like `xs`. Use
# `jax.lax.scan(step, init, xs)`: `step(carry, x)` returns `(new_carry, output)`, and
# scan stacks the outputs. `decay` may be a traced value: do not branch on it.

# %% nbgrader={"grade": false, "grade_id": "ema", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ema(xs: Float[Array, "steps ..."], decay: float) -> Float[Array, "steps ..."]:
    """Exponential moving averages m_t of the rows of `xs`, starting from m = 0."""
    # Hint: the carry is m; the output of each step is the new m too.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'ema' is not done yet: replace this line with your code.")


# %%
check("ema")

# %% [markdown]
# A noisy sine and its averages. The average lags behind the signal, more so with a
# decay closer to one, and starts low because $m_{-1} = 0$:

# %%
times = jnp.linspace(0.0, 6.0, 300)
noisy = jnp.sin(times) + 0.3 * jax.random.normal(jax.random.key(0), times.shape)
plt.plot(times, noisy, ".", alpha=0.3, label="signal")
for decay in (0.9, 0.98):
    plt.plot(times, ema(noisy, decay), label=f"ema, decay {decay}")
plt.legend();

# %% [markdown]
# The loop is one `scan` in the program, whatever the length:

# %%
print(jax.make_jaxpr(ema)(jnp.ones(5), 0.9))

# %% [markdown]
# ## Exercise 2: per-example gradients with `vmap(grad(...))`
#
# `jax.grad(loss)(params, x, y)` is the gradient for one example. Gradient clipping per
# example (differential privacy), influence functions or gradient-noise estimates need
# the gradient of *every* example of a batch, which a loss averaged over the batch has
# lost. Composing the transformations gives them all in one vectorised call.
#
# Write `per_example_grads(loss, params, xs, ys)` where `loss(params, x, y)` returns a
# scalar for one example, `params` is any pytree, and `xs`, `ys` are batches (leading
# axis `B`). Return a pytree shaped like `params` whose every leaf has an extra leading
# axis `B`: the gradients with respect to `params`, one per example.

# %% nbgrader={"grade": false, "grade_id": "per_example_grads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def per_example_grads(loss, params: PyTree, xs: Float[Array, "B ..."], ys: Float[Array, "B ..."]) -> PyTree:
    """The gradient of `loss` with respect to `params` at each example (x, y) of the batch."""
    # Hint: jax.vmap(..., in_axes=(None, 0, 0)) shares params and maps over the examples.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'per_example_grads' is not done yet: replace this line with your code.")


# %%
check("per_example_grads")


# %% [markdown]
# For a linear model with a squared error, the mean of the per-example gradients is the
# gradient of the mean loss:

# %%
def squared_error(params, x, y):
    return (params["w"] @ x + params["b"] - y) ** 2


params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
xs, ys = jax.random.normal(jax.random.key(1), (8, 2)), jnp.arange(8.0)
grads = per_example_grads(squared_error, params, xs, ys)
print(jax.tree.map(jnp.shape, grads))
mean_loss = lambda p: jnp.mean(jax.vmap(squared_error, in_axes=(None, 0, 0))(p, xs, ys))
print(jax.tree.map(lambda g: g.mean(0), grads))
print(jax.grad(mean_loss)(params))

# %% [markdown]
# ## Exercise 3: clipping a pytree by its global norm
#
# Training diffusion models often clips gradients: if the **global norm**
# $\lVert g \rVert = \sqrt{\sum_{\text{leaves}} \sum_{\text{entries}} g^2}$ of all
# gradients together exceeds `max_norm`, every leaf is scaled by
# $\text{max\_norm} / \lVert g \rVert$, which keeps the direction. Otherwise the tree is
# returned unchanged.
#
# Write `clip_by_global_norm(tree, max_norm)` for any pytree of arrays (nested dicts,
# lists, tuples), returning a tree of the same structure. It must work under `jit` with a
# traced `max_norm`: no Python `if` on arrays (`jnp.minimum` or `jnp.where` instead).

# %% nbgrader={"grade": false, "grade_id": "clip_by_global_norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def clip_by_global_norm(tree: PyTree, max_norm: float) -> PyTree:
    """`tree` scaled down so that its global norm is at most `max_norm`."""
    # Hint: jax.tree.leaves(tree) lists the arrays; jax.tree.map(f, tree) keeps the structure.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'clip_by_global_norm' is not done yet: replace this line with your code.")


# %%
check("clip_by_global_norm")

# %% [markdown]
# A tree of norm 13 clipped to norm 1, and left alone with a bound of 20:

# %%
grads = {"layer": [jnp.array([3.0]), jnp.array([4.0])], "out": (jnp.array([12.0]),)}
print(clip_by_global_norm(grads, 1.0))
print(clip_by_global_norm(grads, 20.0))
