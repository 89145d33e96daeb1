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

check = exercise_checks("warmup/01_arrays_and_jit", globals())

# %% [markdown]
# # Warm-up 1: arrays, numerical care and `jit`
#
# `jax.numpy` looks like NumPy, with three differences that matter in every later
# notebook:
#
# - loops over array entries are slow and unroll under `jax.jit`: write whole-array
#   expressions and let **broadcasting** do the pairing;
# - arrays are **immutable**: an update returns a new array (`x.at[i].set(v)`);
# - under `jax.jit` a function is **traced** once per input shape and dtype with abstract
#   values, then compiled. Python code (`print`, `if`) runs at trace time only.
#
# Floating point needs care too: `exp` overflows in float32 above about 88.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Check your work with
# `uv run pytest exercises/warmup/test_01_arrays_and_jit.py` or `uv run grader status`.

# %%
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

# %% [markdown]
# ## Exercise 1: pairwise squared distances by broadcasting
#
# Kernels, nearest neighbours and mixture models all need the matrix of squared
# distances $D_{ij} = \lVert x_i - y_j \rVert^2$ between two sets of points. Write
# `pairwise_sq_distances(x, y)` for `x` of shape `(n, d)` and `y` of shape `(m, d)`,
# returning shape `(n, m)`, **without a Python loop**. Inserting axes with `None`
# lines the points up: `x[:, None, :] - y[None, :, :]` has shape `(n, m, d)`.

# %% nbgrader={"grade": false, "grade_id": "pairwise_sq_distances", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pairwise_sq_distances(x: Float[Array, "n d"], y: Float[Array, "m d"]) -> Float[Array, "n m"]:
    """Squared Euclidean distances between every row of `x` and every row of `y`."""
    # Hint: broadcast to (n, m, d), square, and sum over the last axis.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'pairwise_sq_distances' is not done yet: replace this line with your code.")


# %%
check("pairwise_sq_distances")

# %% [markdown]
# Three points against the first two of them: the zeros mark a point paired with itself.

# %%
points = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
print(pairwise_sq_distances(points, points[:2]))

# %% [markdown]
# ## Exercise 2: a numerically stable log-sum-exp
#
# $\operatorname{LSE}(x) = \log \sum_i e^{x_i}$ appears in every log-likelihood of a
# mixture and every softmax. Computed as written, `exp` overflows to `inf` as soon as some
# $x_i > 88$ (float32). Since $\operatorname{LSE}(x) = c + \log \sum_i e^{x_i - c}$ for any
# constant $c$, pick $c = \max_i x_i$: then every exponent is $\le 0$ and the largest term
# is exactly 1.
#
# Write `stable_logsumexp(x)` for a vector `x` of shape `(n,)`. Its gradients must be
# right too: wrap the shift in `jax.lax.stop_gradient` (the value does not depend on $c$,
# so neither should the derivative, and `max` has awkward derivatives at ties).

# %% nbgrader={"grade": false, "grade_id": "stable_logsumexp", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stable_logsumexp(x: Float[Array, " n"]) -> Float[Array, ""]:
    """log(sum(exp(x))) without overflow."""
    # Hint: c = jax.lax.stop_gradient(jnp.max(x)); return c + log(sum(exp(x - c))).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'stable_logsumexp' is not done yet: replace this line with your code.")


# %%
check("stable_logsumexp")

# %% [markdown]
# The naive formula overflows where the stable one does not:

# %%
big = jnp.array([1000.0, 1001.0, 999.0])
print("naive: ", jnp.log(jnp.sum(jnp.exp(big))))
print("stable:", stable_logsumexp(big))

# %% [markdown]
# ## Exercise 3: a stable softmax
#
# $\operatorname{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}$ has the same problem, and the
# same cure: shifting every $x_i$ by a constant leaves the ratio unchanged, so subtract
# $\max_j x_j$ (behind `stop_gradient`) before exponentiating. Write `stable_softmax(x)`
# for a vector of shape `(n,)`; it must be finite for large inputs and sum to one.
# (`jnp.exp(x - stable_logsumexp(x))` is also right, but loses a few digits when the
# $x_i$ are large, since $x_i - \operatorname{LSE}(x)$ subtracts two large numbers.)

# %% nbgrader={"grade": false, "grade_id": "stable_softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
def stable_softmax(x: Float[Array, " n"]) -> Float[Array, " n"]:
    """Probabilities proportional to exp(x), without overflow."""
    # Hint: e = jnp.exp(x - shift); then normalise e.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'stable_softmax' is not done yet: replace this line with your code.")


# %%
check("stable_softmax")

# %%
print(stable_softmax(big), stable_softmax(big).sum())

# %% [markdown]
# ## Exercise 4: immutable updates with `.at[]`
#
# `x[i] = v` is an error on a JAX array. Instead `x.at[i].set(v)` returns a *new* array
# (under `jit`, XLA usually performs the update in place when the old array is not used
# again, so it costs nothing). Index arrays work as in NumPy: `x.at[rows, cols]` selects
# the pairs `(rows[k], cols[k])`.
#
# Write `set_diagonal(matrix, values)` that returns a copy of the square `matrix` with its
# diagonal replaced by `values`. The input must stay unchanged, even when it is a NumPy
# array.

# %% nbgrader={"grade": false, "grade_id": "set_diagonal", "locked": false, "schema_version": 3, "solution": true, "task": false}
def set_diagonal(matrix: Float[Array, "n n"], values: Float[Array, " n"]) -> Float[Array, "n n"]:
    """A copy of `matrix` with `values` on its diagonal."""
    # Hint: i = jnp.arange(n); jnp.asarray(matrix).at[i, i].set(values)
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'set_diagonal' is not done yet: replace this line with your code.")


# %%
check("set_diagonal")

# %%
print(set_diagonal(jnp.zeros((3, 3)), jnp.array([1.0, 2.0, 3.0])))

# %% [markdown]
# ## Exercise 5: trace time and run time
#
# Inside a jitted function, `print(x)` shows an abstract tracer, once, when the function
# is traced; later calls with the same shapes reuse the compiled program and print
# nothing:

# %%
@jax.jit
def show(x):
    print("traced with", x)
    return 2 * x


show(jnp.ones(2))
show(jnp.zeros(2));  # no print: the compiled program is reused

# %% [markdown]
# `jax.debug.print("... {name} ...", name=value)` is compiled into the program and prints
# the actual value at **every** call. Write `normalize(x)` that returns `x / ‖x‖` and
# prints the norm at run time as `norm = 5.000` (three decimals) with
# `jax.debug.print("norm = {n:.3f}", n=...)`.

# %% nbgrader={"grade": false, "grade_id": "normalize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def normalize(x: Float[Array, " d"]) -> Float[Array, " d"]:
    """`x` scaled to unit length; prints its norm each time it runs, also under jit."""
    # Hint: norm = jnp.linalg.norm(x); then jax.debug.print(..., n=norm).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'normalize' is not done yet: replace this line with your code.")


# %%
check("normalize")

# %% [markdown]
# Jitted, it prints at both calls:

# %%
fast_normalize = jax.jit(normalize)
fast_normalize(jnp.array([3.0, 4.0]))
fast_normalize(jnp.array([5.0, 12.0]))
jax.effects_barrier()  # wait for the prints before going on
