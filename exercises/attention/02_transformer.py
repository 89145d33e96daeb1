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

check = exercise_checks("attention/02_transformer", globals())

# %% [markdown]
# # Attention 2: multi-head attention, rotary positions and a tiny transformer
#
# A transformer layer runs several attentions side by side, the **heads**, each on its
# own learned projection of the sequence, so that one head can track position while
# another matches content. Positions enter either as learned vectors added to the token
# embeddings, or, as in most recent models (ESM-2, LLaMA), by **rotating** queries and
# keys by an angle proportional to their position.
#
# At the end of this notebook you train a small transformer, built from your multi-head
# attention and the course's blocks (`course.nn.Transformer`), to reverse a sequence of
# digits, and look at what each head attends to.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Functions and modules take one
# sequence (no batch axis); use `jax.vmap` for batches. Check your work with
# `uv run pytest exercises/attention/test_02_transformer.py` or `uv run grader status`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from course import data, nn, plotting, training

# %% [markdown]
# ## Exercise 1: rotary position embeddings
#
# Split a vector of even length $d$ into halves $x^{(1)}, x^{(2)}$ and treat each pair
# $(x^{(1)}_i, x^{(2)}_i)$ as a point in the plane. At position $m$, rotate pair $i$ by
# the angle $m\,\omega_i$, with frequencies $\omega_i = \theta^{-2i/d}$ falling from 1
# to about $1/\theta$ ($\theta = 10\,000$):
#
# $$
# \begin{aligned}
# y^{(1)}_i &= x^{(1)}_i \cos(m\omega_i) - x^{(2)}_i \sin(m\omega_i), \\
# y^{(2)}_i &= x^{(2)}_i \cos(m\omega_i) + x^{(1)}_i \sin(m\omega_i).
# \end{aligned}
# $$
#
# A rotation by $m\omega$ of the query and by $n\omega$ of the key leaves a product that
# depends on $(m - n)\omega$ only: attention sees **relative** positions. Write
# `rotary_embedding(x, positions)` for a sequence `x` of shape `(seq, d)`; positions
# default to `0, 1, ..., seq - 1`. (This is the "rotate half" layout of
# `eqx.nn.RotaryPositionalEmbedding` and ESM-2.)

# %% nbgrader={"grade": false, "grade_id": "rotary_embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rotary_embedding(
    x: Float[Array, "seq d"],
    positions: Int[Array, " seq"] | None = None,
    theta: float = 10_000.0,
) -> Float[Array, "seq d"]:
    """Rotate the pairs (x[:, i], x[:, i + d/2]) by the angles positions * theta**(-2i/d)."""
    # Hint: angles = positions[:, None] * frequencies[None, :] has shape (seq, d/2).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'rotary_embedding' is not done yet: replace this line with your code.")


# %%
check("rotary_embedding")

# %% [markdown]
# The same query and key placed at positions (3, 1) and (10, 8): the offset is 2 both
# times, so the products agree.

# %%
query_and_key = jax.random.normal(jax.random.key(0), (2, 8))
for positions in (jnp.array([3, 1]), jnp.array([10, 8])):
    rotated = rotary_embedding(query_and_key, positions)
    print(f"positions {positions.tolist()}: q . k = {rotated[0] @ rotated[1]:.4f}")

# %% [markdown]
# ## Exercise 2: multi-head self-attention
#
# `MultiheadAttention` projects the sequence to queries, keys and values with three
# linear maps of shape `dim -> dim`, splits each into `num_heads` heads of size
# `dim // num_heads`, runs attention in every head, puts the heads side by side again and
# mixes them with an output map. The constructor and `heads` (project and split) are
# written for you; the layer names match `eqx.nn.MultiheadAttention`, so the tests can
# copy its weights into yours and compare.
#
# Write
# - `attention_weights(x, mask)`: the weights of every head, shape `(heads, seq, seq)`.
#   With `rotary`, rotate each head's queries and keys with your `rotary_embedding`;
#   with `causal`, combine `mask` (if any) with a causal mask (`&`). Mask with
#   `jnp.finfo(dtype).min`, as in the first notebook.
# - `__call__(x, mask)`: the output, shape `(seq, dim)`.

# %% nbgrader={"grade": false, "grade_id": "MultiheadAttention", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiheadAttention(eqx.Module):
    """Multi-head self-attention over one sequence, optionally rotary and causal."""

    query_proj: eqx.nn.Linear
    key_proj: eqx.nn.Linear
    value_proj: eqx.nn.Linear
    output_proj: eqx.nn.Linear
    num_heads: int = eqx.field(static=True)
    rotary: bool = eqx.field(static=True)
    causal: bool = eqx.field(static=True)

    def __init__(self, dim: int, num_heads: int, *, rotary: bool = False, causal: bool = False,
                 key: PRNGKeyArray):
        if dim % num_heads != 0:
            raise ValueError(f"dim ({dim}) must be a multiple of num_heads ({num_heads}).")
        query_key, key_key, value_key, output_key = jax.random.split(key, 4)
        self.query_proj = eqx.nn.Linear(dim, dim, use_bias=False, key=query_key)
        self.key_proj = eqx.nn.Linear(dim, dim, use_bias=False, key=key_key)
        self.value_proj = eqx.nn.Linear(dim, dim, use_bias=False, key=value_key)
        self.output_proj = eqx.nn.Linear(dim, dim, use_bias=False, key=output_key)
        self.num_heads = num_heads
        self.rotary = rotary
        self.causal = causal

    def heads(self, projection: eqx.nn.Linear, x: Float[Array, "seq dim"]) -> Float[Array, "heads seq head_dim"]:
        """Project every position, then split the result into heads."""
        projected = jax.vmap(projection)(x)  # (seq, dim)
        return projected.reshape(x.shape[0], self.num_heads, -1).transpose(1, 0, 2)

    def attention_weights(
        self, x: Float[Array, "seq dim"], mask: Bool[Array, "seq seq"] | None = None
    ) -> Float[Array, "heads seq seq"]:
        """Each head's softmax(q k^T / sqrt(head_dim)) over the allowed keys."""
        # Hint: queries and keys of shape (heads, seq, head_dim); jax.vmap(rotary_embedding) rotates every head.
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 'MultiheadAttention' is not done yet: replace this line with your code.")

    def __call__(self, x: Float[Array, "seq dim"], mask: Bool[Array, "seq seq"] | None = None) -> Float[Array, "seq dim"]:
        # Hint: (heads, seq, seq) @ (heads, seq, head_dim), then back to (seq, heads * head_dim).
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 'MultiheadAttention' is not done yet: replace this line with your code.")


# %%
check("MultiheadAttention")

# %% [markdown]
# A causal, rotary layer with 4 heads on a random sequence: the output has the input's
# shape, and every head's weights are lower triangular.

# %%
layer = MultiheadAttention(16, 4, rotary=True, causal=True, key=jax.random.key(1))
x = jax.random.normal(jax.random.key(2), (5, 16))
print("output shape:", layer(x).shape)
print("weights above the diagonal:", float(jnp.triu(layer.attention_weights(x), k=1).sum()))

# %% [markdown]
# ## Exercise 3: the training loss
#
# A sequence-to-sequence model predicts, at each position, a vector of logits over the
# vocabulary. Its loss is the cross-entropy with the target token, averaged over the
# positions: $-\frac{1}{L}\sum_i \log \operatorname{softmax}(\ell_i)_{y_i}$. Use
# `jax.nn.log_softmax`, which is stable for large logits.

# %% nbgrader={"grade": false, "grade_id": "sequence_cross_entropy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sequence_cross_entropy(logits: Float[Array, "seq vocab"], targets: Int[Array, " seq"]) -> Float[Array, ""]:
    """Mean over positions of -log softmax(logits[i])[targets[i]]."""
    # Hint: jnp.take_along_axis(log_probabilities, targets[:, None], axis=-1).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'sequence_cross_entropy' is not done yet: replace this line with your code.")


# %%
check("sequence_cross_entropy")

# %% [markdown]
# ## A tiny transformer that reverses sequences
#
# The task: read 8 digits, write them in reverse order. Position $i$ must copy the token
# at position $7 - i$, which attention can do in one step if it knows where it is: the
# model adds learned position embeddings to the tokens (`max_length`). The blocks
# (LayerNorm, your attention, a feed-forward layer, residual connections) come from
# `course.nn.Transformer`; `make_attention` tells it to use your `MultiheadAttention`.
# Training takes well under a minute on a laptop CPU.

# %%
LENGTH, VOCAB_SIZE, DIM, NUM_HEADS, NUM_LAYERS = 8, 10, 32, 2, 2
data_key, model_key, train_key, test_key = jax.random.split(jax.random.key(42), 4)
tokens, targets = data.reverse_task(data_key, 20_000, LENGTH, VOCAB_SIZE)

model = nn.Transformer(
    VOCAB_SIZE, DIM, NUM_LAYERS, max_length=LENGTH,
    make_attention=lambda key: MultiheadAttention(DIM, NUM_HEADS, key=key),
    key=model_key,
)


def reverse_loss(model: nn.Transformer, batch, key: PRNGKeyArray) -> Float[Array, ""]:
    tokens, targets = batch
    return jnp.mean(jax.vmap(sequence_cross_entropy)(jax.vmap(model)(tokens), targets))


model, losses = training.train(reverse_loss, model, (tokens, targets), key=train_key,
                               num_steps=600, batch_size=128, learning_rate=3e-3)
plt.semilogy(losses)
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.show()

test_tokens, test_targets = data.reverse_task(test_key, 1_000, LENGTH, VOCAB_SIZE)
predictions = jnp.argmax(jax.vmap(model)(test_tokens), axis=-1)
print(f"digits right on new sequences: {float(jnp.mean(predictions == test_targets)):.1%}")
print("input:     ", test_tokens[0].tolist())
print("prediction:", predictions[0].tolist())

# %% [markdown]
# ## Exercise 4: attention maps
#
# What has the model learned? Write `attention_maps(model, tokens)`, the attention
# weights of every layer and head for one sequence, shape `(layers, heads, seq, seq)`.
# `model.attention_inputs(tokens)` gives what each block's attention sees, and each block
# keeps its attention module in `block.attention`.

# %% nbgrader={"grade": false, "grade_id": "attention_maps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_maps(model: nn.Transformer, tokens: Int[Array, " seq"]) -> Float[Array, "layers heads seq seq"]:
    """The attention weights of every block of `model` on `tokens`, stacked."""
    # Hint: zip(model.blocks, model.attention_inputs(tokens)); each block.attention has attention_weights.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'attention_maps' is not done yet: replace this line with your code.")


# %%
check("attention_maps")

# %% [markdown]
# Where a head has learned the task, its map is the anti-diagonal: the query at position
# $i$ looks at key $7 - i$. Other heads may do something else, or nothing useful.

# %%
labels = [str(token) for token in test_tokens[0].tolist()]
plotting.plot_attention_maps(attention_maps(model, test_tokens[0]), query_labels=labels, key_labels=labels,
                             title="reversing " + " ".join(labels))
plt.show()
