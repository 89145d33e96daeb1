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

check = exercise_checks("attention/01_attention", globals())

# %% [markdown]
# # Attention 1: scaled dot-product attention
#
# Attention lets every position of a sequence look up information at every other
# position. Each position asks a **query** $q_i$; each position offers a **key** $k_j$ and
# a **value** $v_j$. Position $i$ receives a weighted average of the values,
#
# $$
# \operatorname{out}_i = \sum_j a_{ij} v_j, \qquad
# a_{ij} = \operatorname{softmax}_j\!\left(\frac{q_i \cdot k_j}{\sqrt{d}}\right),
# $$
#
# where $d$ is the length of the queries and keys. The weights of one query are positive
# and sum to 1: a soft version of "find the key that matches best". Dividing by
# $\sqrt{d}$ keeps the logits of order 1 when the entries of $q$ and $k$ are, so that the
# softmax is not saturated from the start of training.
#
# A boolean **mask** says which keys a query may look at (`mask[i, j]` is True when query
# `i` may attend to key `j`): padding, or the future in a language model.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Functions take one sequence
# (no batch axis); use `jax.vmap` for batches. Check your work with
# `uv run pytest exercises/attention/test_01_attention.py` or `uv run grader status`.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from jaxtyping import Array, Bool, Float

from course import plotting

# %% [markdown]
# ## Exercise 1: the attention weights
#
# Write `attention_weights(query, key, mask)`: the matrix $a$ of shape
# `(queries, keys)`. Where the mask is False, the logit must become so negative that its
# weight is exactly zero after the softmax. Use the most negative number of the logits'
# dtype, `jnp.finfo(logits.dtype).min`, not a "large" constant such as `-1e9`: logits
# can be larger than any constant you pick, and a constant can overflow in float16.
# Use `jax.nn.softmax`, which subtracts the maximum first, so that large logits cannot
# overflow `exp`.
#
# (A query whose keys are all masked gets uniform weights; avoid that case.)

# %% nbgrader={"grade": false, "grade_id": "attention_weights", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_weights(
    query: Float[Array, "queries d"],
    key: Float[Array, "keys d"],
    mask: Bool[Array, "queries keys"] | None = None,
) -> Float[Array, "queries keys"]:
    """softmax over the keys of query . key / sqrt(d), with masked keys given weight zero."""
    # Hint: logits = query @ key.T / d ** 0.5; jnp.where(mask, logits, jnp.finfo(logits.dtype).min).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'attention_weights' is not done yet: replace this line with your code.")


# %%
check("attention_weights")

# %% [markdown]
# Four queries and keys, each the same point scaled up: every query matches its own key
# best, and the larger the scale, the sharper the match (a lower temperature).

# %%
angles = jnp.linspace(0.0, 2.0 * jnp.pi, 4, endpoint=False)
points = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
for scale in (1.0, 3.0):
    print(f"scale {scale}:\n{attention_weights(scale * points, scale * points).round(2)}")

# %% [markdown]
# ## Exercise 2: attention
#
# Now the output: `dot_product_attention(query, key, value, mask)` returns the
# weighted averages of the values, shape `(queries, dv)`. JAX has the same function
# for batches of multi-head inputs, `jax.nn.dot_product_attention`; the tests compare
# yours with it.

# %% nbgrader={"grade": false, "grade_id": "dot_product_attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dot_product_attention(
    query: Float[Array, "queries d"],
    key: Float[Array, "keys d"],
    value: Float[Array, "keys dv"],
    mask: Bool[Array, "queries keys"] | None = None,
) -> Float[Array, "queries dv"]:
    """The attention-weighted average of the values, one row per query."""
    # Hint: one matrix product with your attention_weights.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'dot_product_attention' is not done yet: replace this line with your code.")


# %%
check("dot_product_attention")

# %% [markdown]
# Attention has no idea of order: shuffle the keys together with their values and each
# query gets the same answer; shuffle the queries and the answers are shuffled the same
# way (**permutation equivariance**). Order has to be added to the inputs: the position
# embeddings of the next notebook.

# %%
key_q, key_k, key_v = jax.random.split(jax.random.key(0), 3)
q = jax.random.normal(key_q, (5, 8))
k = jax.random.normal(key_k, (7, 8))
v = jax.random.normal(key_v, (7, 3))
shuffle = jnp.array([3, 0, 6, 1, 5, 2, 4])
same = jnp.allclose(dot_product_attention(q, k, v), dot_product_attention(q, k[shuffle], v[shuffle]), atol=1e-6)
print("keys and values shuffled together, same output:", bool(same))

# %% [markdown]
# ## Exercise 3: the causal mask
#
# A language model that predicts the next token must not peek at it: position `i` may
# attend to positions `j <= i` only. Write `causal_mask(length)`, the boolean
# `(length, length)` matrix that is True on and below the diagonal.

# %% nbgrader={"grade": false, "grade_id": "causal_mask", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask(length: int) -> Bool[Array, "length length"]:
    """True where query i may attend to key j, that is where j <= i."""
    # Hint: jnp.tril of a matrix of ones, as booleans.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'causal_mask' is not done yet: replace this line with your code.")


# %%
check("causal_mask")

# %% [markdown]
# The weights of a causal self-attention over six positions: each row spreads over the
# past and the present only. With random queries and keys, the first query can only look
# at itself.

# %%
x = jax.random.normal(jax.random.key(1), (6, 4))
weights = attention_weights(x, x, causal_mask(6))
plotting.plot_attention_maps(weights[None, None], title="causal self-attention")
plt.show()
