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

check = exercise_checks("warmup/03_keys_and_modules", globals())

# %% [markdown]
# # Warm-up 3: PRNG keys and models as pytrees
#
# Two habits every later notebook relies on:
#
# - JAX's random numbers are a pure function of a **key**: the same key gives the same
#   numbers, every time. Reusing a key silently gives *correlated* noise, so split a key
#   into fresh ones and use each exactly once.
# - A model is a **pytree**: its arrays are leaves that `jit`, `grad` and `vmap` see; its
#   configuration (an activation's name, a layer count) is static data that `jit`
#   compiles in.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Check your work with
# `uv run pytest exercises/warmup/test_03_keys_and_modules.py` or `uv run grader status`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

# %% [markdown]
# ## Exercise 1: splitting keys in a noising loop
#
# The forward process of a diffusion model adds a little Gaussian noise at each step:
#
# $$x_{k+1} = \sqrt{1 - \beta}\, x_k + \sqrt{\beta}\, z_k, \qquad z_k \sim \mathcal{N}(0, I),$$
#
# so that $x_k$ drifts towards pure noise. A first draft reuses one key:
#
# ```python
# for _ in range(num_steps):
#     x = jnp.sqrt(1 - beta) * x + jnp.sqrt(beta) * jax.random.normal(key, x.shape)  # same z every step!
# ```
#
# Every $z_k$ is then the same vector, and the trajectory is a straight slide towards it.
#
# Write `noisy_trajectory(x0, key, num_steps, beta)` that returns the points
# $x_0, x_1, \dots, x_{\text{num\_steps}}$ stacked, shape `(num_steps + 1, d)`. At each
# step, split first, `key, step_key = jax.random.split(key)`, and draw $z_k$ with
# `step_key`. `num_steps` is a Python int (a Python loop is fine for a few steps;
# `lax.scan` with the key in the carry gives the same numbers).

# %% nbgrader={"grade": false, "grade_id": "noisy_trajectory", "locked": false, "schema_version": 3, "solution": true, "task": false}
def noisy_trajectory(
    x0: Float[Array, " d"], key: PRNGKeyArray, num_steps: int, beta: float
) -> Float[Array, "num_steps+1 d"]:
    """x0 and the points after each of `num_steps` noising steps."""
    # Hint: inside the loop, key, step_key = jax.random.split(key) before drawing noise.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'noisy_trajectory' is not done yet: replace this line with your code.")


# %%
check("noisy_trajectory")

# %% [markdown]
# JAX can catch the first draft's mistake: with `jax.debug_key_reuse(True)` (and keys
# made by `jax.random.key`), using a key twice raises an error.

# %%
with jax.debug_key_reuse(True):
    trajectory = noisy_trajectory(jnp.full(2, 3.0), jax.random.key(0), 20, 0.1)
print(trajectory[::5])

# %% [markdown]
# ## Exercise 2: a model as a pytree
#
# `jax.tree_util.register_pytree_node_class` turns a class into a pytree node. The class
# says how to take an instance apart and put it back together:
#
# - `tree_flatten(self)` returns `(children, aux_data)`: the **children** are the arrays
#   (the leaves that transformations trace and differentiate); `aux_data` is static,
#   hashable data. `jit` compiles it into the program, so a new value retraces.
# - the class method `tree_unflatten(cls, aux_data, children)` rebuilds an instance.
#
# Complete `Affine`, the layer $y = \sigma(W x + b)$ for one input `x`: its leaves are
# `weight` then `bias`; its static data is the name of the activation $\sigma$, a key of
# `ACTIVATIONS`. Write `tree_flatten`, `tree_unflatten` and `__call__`.

# %%
ACTIVATIONS = {"identity": lambda z: z, "tanh": jnp.tanh, "relu": jax.nn.relu}


# %% nbgrader={"grade": false, "grade_id": "Affine", "locked": false, "schema_version": 3, "solution": true, "task": false}
@jax.tree_util.register_pytree_node_class
class Affine:
    """activation(weight @ x + bias); `activation` is static, a key of ACTIVATIONS."""

    def __init__(self, weight: Float[Array, "out in"], bias: Float[Array, " out"], activation: str = "identity"):
        self.weight, self.bias, self.activation = weight, bias, activation

    def tree_flatten(self):
        # Hint: return (self.weight, self.bias), self.activation
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 'Affine' is not done yet: replace this line with your code.")

    @classmethod
    def tree_unflatten(cls, activation, children):
        # Hint: cls(...) with the two children and the activation.
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 'Affine' is not done yet: replace this line with your code.")

    def __call__(self, x: Float[Array, " in"]) -> Float[Array, " out"]:
        # Hint: ACTIVATIONS[self.activation] is the function to apply.
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 'Affine' is not done yet: replace this line with your code.")


# %%
check("Affine")

# %% [markdown]
# Now `jax.tree.leaves` sees the arrays, `jax.grad` differentiates with respect to them,
# and a jitted function is traced again only when the static activation changes:

# %%
layer = Affine(jnp.eye(2), jnp.ones(2), "tanh")
print([leaf.shape for leaf in jax.tree.leaves(layer)])
traces = []


@jax.jit
def apply(layer, x):
    traces.append(layer.activation)  # runs at trace time only
    return layer(x)


apply(layer, jnp.ones(2))
apply(Affine(2 * jnp.eye(2), jnp.zeros(2), "tanh"), jnp.ones(2))  # new arrays: no retrace
apply(Affine(jnp.eye(2), jnp.ones(2), "relu"), jnp.ones(2))  # new activation: retrace
print("traced for:", traces)
print(jax.grad(lambda layer: layer(jnp.ones(2)).sum())(layer).weight)

# %% [markdown]
# Equinox writes these two methods for you: an `eqx.Module` is a dataclass whose fields
# are children, except those marked `eqx.field(static=True)`, which go to the static data.
# The same layer in Equinox:

# %%
class EqxAffine(eqx.Module):
    weight: Float[Array, "out in"]
    bias: Float[Array, " out"]
    activation: str = eqx.field(static=True, default="identity")

    def __call__(self, x):
        return ACTIVATIONS[self.activation](self.weight @ x + self.bias)


print(jax.tree.leaves(EqxAffine(jnp.eye(2), jnp.ones(2), "tanh")))
