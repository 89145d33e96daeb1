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

check = exercise_checks("protein/02_encoder_and_contacts", globals())

# %% [markdown]
# # Protein 2: the encoder block, attention maps and contacts
#
# ESM-2 is an **encoder**: every position attends to every other (no causal mask), so
# the prediction at a masked residue uses both sides of the chain. Its blocks are the
# pre-LayerNorm blocks of the attention track, with rotary position embeddings and biases
# in the four attention projections:
#
# $$
# x \leftarrow x + \mathrm{Attention}(\mathrm{LN}(x)), \qquad
# x \leftarrow x + \mathrm{FFN}(\mathrm{LN}(x)).
# $$
#
# Residues far apart in the chain but touching in the folded protein mutate together
# (one compensates for the other), so a model that predicts residues from their context
# learns to look from one to the other. Rao et al. (2021) showed that ESM's attention
# maps, cleaned up, predict which residues are in **contact**. Here you write the block
# by hand so that it returns its attention weights, collect them over the model, and turn
# them into a contact map.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Sequences are single (no batch
# axis); use `jax.vmap` for batches. Check your work with
# `uv run pytest exercises/protein/test_02_encoder_and_contacts.py` or `uv run grader status`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from course import nn, plotting
from course.data import proteins
from course.nn.protein_lm import ALPHABET, PAD, ProteinLM, tokenize
from course.pretrained.protein_lm import load_protein_lm

# %% [markdown]
# ## Exercise 1: an encoder block that shows its attention
#
# `course.nn.TransformerBlock` holds
# - `attention_norm` and `feed_forward_norm`, two `eqx.nn.LayerNorm` (one position each),
# - `feed_forward`, the position-wise two-layer perceptron (GELU in between),
# - `attention`, an `nn.EquinoxSelfAttention` whose `attention` field is an
#   `eqx.nn.MultiheadAttention` (fields `query_proj`, `key_proj`, `value_proj`,
#   `output_proj`, `num_heads`) and whose `rotary` field is an
#   `eqx.nn.RotaryPositionalEmbedding` acting on one head, shape `(seq, head_dim)`.
#
# Calling the block gives its output but hides the attention weights. Write
# `encoder_block(block, x, is_token)` computing the same output by hand and returning the
# weights too, shape `(heads, seq, seq)`: project, split into heads, rotate queries and
# keys, scaled dot products, keys at padding (`is_token` False) masked with
# `jnp.finfo(dtype).min`, softmax, mix the values, join the heads, output projection,
# residual; then the feed-forward half.

# %% nbgrader={"grade": false, "grade_id": "encoder_block", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encoder_block(
    block: nn.TransformerBlock, x: Float[Array, "seq dim"], is_token: Bool[Array, " seq"]
) -> tuple[Float[Array, "seq dim"], Float[Array, "heads seq seq"]]:
    """`block(x, key_padding_mask(is_token))` and the attention weights of its heads."""
    # Hint: jax.vmap(block.attention.rotary, in_axes=1, out_axes=1) rotates queries of shape (seq, heads, head_dim).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'encoder_block' is not done yet: replace this line with your code.")


# %%
check("encoder_block")

# %% [markdown]
# A tiny random model's first block, on a 6-token sequence padded to 8: the outputs
# agree with the library's block, and no weight goes to the padding.

# %%
tiny = ProteinLM(dim=16, num_layers=2, num_heads=2, key=jax.random.key(0))
tokens = jnp.asarray(tokenize("MKVLA").tolist() + [PAD] * 2)
x = tiny.embed(tokens)
yours, weights = encoder_block(tiny.blocks[0], x, tokens != PAD)
library = tiny.blocks[0](x, tiny.padding_mask(tokens))
print("largest difference with the library block:", float(jnp.max(jnp.abs(yours - library))))
print("weight on padding keys:", float(weights[:, :, tokens == PAD].sum()))

# %% [markdown]
# ## Exercise 2: every attention map of the model
#
# Write `attention_maps(model, tokens)`: start from `model.embed(tokens)`, run the
# residual stream through every block of `model.blocks` with your `encoder_block`
# (padding is `tokens == PAD`), and stack the weights: shape `(layers, heads, seq, seq)`.

# %% nbgrader={"grade": false, "grade_id": "attention_maps", "locked": false, "schema_version": 3, "solution": true, "task": false}
def attention_maps(model: ProteinLM, tokens: Int[Array, " seq"]) -> Float[Array, "layers heads seq seq"]:
    """The attention weights of every block of `model` on `tokens`, stacked."""
    # Hint: a Python loop over model.blocks, carrying x.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'attention_maps' is not done yet: replace this line with your code.")


# %%
check("attention_maps")

# %% [markdown]
# The course's model on the start of a protein it never saw in training. Many heads look
# at the previous or next residue, or at `<cls>` and `<eos>` (a "nothing to do" spot).

# %%
model = load_protein_lm()
_, held_out = proteins.proteome_split()
protein = list(held_out.values())[0][:24]
tokens = jnp.asarray(tokenize(protein))
labels = [ALPHABET[t] for t in tokens.tolist()]
maps = eqx.filter_jit(attention_maps)(model, tokens)
plotting.plot_attention_maps(maps, query_labels=labels, key_labels=labels, title=protein)
plt.show()

# %% [markdown]
# ## Exercise 3: from attention maps to a contact map
#
# Contacts are symmetric, attention is not; and some residues attract attention from
# everywhere, which says nothing about contacts. Following Rao et al. (2021), for each
# layer and head take the map $A$ over the residues only (drop the `<cls>` and `<eos>`
# rows and columns before calling), then
# 1. symmetrise: $F = A + A^\top$;
# 2. apply the **average product correction** (APC, from coevolution analysis):
#    $F^{\mathrm{APC}}_{ij} = F_{ij} - \frac{F_{i\cdot}\, F_{\cdot j}}{F_{\cdot\cdot}}$
#    with $F_{i\cdot}$ the row sums, $F_{\cdot j}$ the column sums and $F_{\cdot\cdot}$
#    the total;
# 3. average over all layers and heads.
#
# (ESM fits a logistic regression over the heads instead of the average; with a
# tiny model the average is as good.) Write `contact_map(maps)`.

# %% nbgrader={"grade": false, "grade_id": "contact_map", "locked": false, "schema_version": 3, "solution": true, "task": false}
def contact_map(maps: Float[Array, "layers heads n n"]) -> Float[Array, "n n"]:
    """Mean over layers and heads of the APC-corrected symmetrised attention maps."""
    # Hint: work on the last two axes; keepdims=True keeps the sums broadcastable.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'contact_map' is not done yet: replace this line with your code.")


# %%
check("contact_map")

# %% [markdown]
# The contact map of GB1, the small domain of protein G whose mutants the design notebook
# uses. Its fold is known: four β-strands (residues 2-8, 13-19, 42-46, 51-55) around one
# helix (23-36); strand pairs run side by side, so their contacts appear as lines
# perpendicular (antiparallel: 1-2, 3-4) or parallel (1-4) to the diagonal. A model of
# 0.8 M parameters trained on one bacterium sees mostly neighbours along the chain;
# real ESM-2 (see `course.pretrained.protein_lm.from_esm2quinox`) draws the sheet.

# %%
tokens = jnp.asarray(tokenize(proteins.GB1_WILD_TYPE))
residue_maps = eqx.filter_jit(attention_maps)(model, tokens)[:, :, 1:-1, 1:-1]
contacts = np.array(contact_map(residue_maps))
np.fill_diagonal(contacts, np.nan)
fig, ax = plt.subplots(figsize=(5, 4.5))
image = ax.imshow(contacts, cmap="Blues", extent=(1.5, 56.5, 56.5, 1.5))
fig.colorbar(image, ax=ax, shrink=0.8, label="contact score")
ax.set_xlabel("residue")
ax.set_ylabel("residue")
ax.set_title("GB1: attention-derived contact scores")
plt.show()
