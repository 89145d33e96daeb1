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

check = exercise_checks("protein/01_tokens_and_masking", globals())

# %% [markdown]
# # Protein 1: tokens, masking and the masked-language-model loss
#
# A protein is a string over 20 letters, the amino acids, folded into a shape that the
# string alone determines. **Protein language models** such as ESM-2 (Lin et al. 2023)
# learn what natural proteins look like by playing a fill-in-the-blanks game over
# millions of sequences: hide 15% of the residues, predict them from the rest. No
# structure, no labels; yet the model picks up which residues are buried, which pairs
# touch in 3D, and which mutations a protein tolerates.
#
# This track builds that game and uses a small model of the ESM-2 kind that the course
# trained on the 2,100 proteins of one bacterium (`course.pretrained.protein_lm`). In this
# notebook: turn sequences into tokens, corrupt them as ESM-2 does, and write the loss.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Check your work with
# `uv run pytest exercises/protein/test_01_tokens_and_masking.py` or `uv run grader status`.

# %%
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from course.data import proteins
from course.nn.protein_lm import ALPHABET, AMINO_ACID_TOKENS, CLS, EOS, MASK, PAD, UNK

# %% [markdown]
# ## The ESM-2 alphabet
#
# ESM-2 has 33 tokens: four special ones first (`<cls>` opens every sequence, `<pad>`
# fills batches, `<eos>` closes a sequence, `<unk>` stands for anything unknown), the 20
# amino acids ordered by how common they are, rare letters (`X` any residue, `B`, `U`
# selenocysteine, `Z`, `O` pyrrolysine), gap symbols, and `<mask>` last. We use the same
# order, so that real ESM-2 weights fit our model.

# %%
print(len(ALPHABET), "tokens:", " ".join(ALPHABET))
print("special tokens: <cls>", CLS, " <pad>", PAD, " <eos>", EOS, " <unk>", UNK, " <mask>", MASK)

# %% [markdown]
# ## Exercise 1: tokenising a batch of proteins
#
# Write `tokenize(sequences)`: one row per sequence, `<cls>`, then the residues' token
# indices (`ALPHABET.index(letter)`; upper-case the letters first; a letter that is not a
# single-letter token becomes `<unk>`), then `<eos>`, then `<pad>` up to the length of the
# longest row. Return a NumPy `int32` array of shape `(batch, longest + 2)`. This is
# string handling: plain Python and NumPy, no `jit`.

# %% nbgrader={"grade": false, "grade_id": "tokenize", "locked": false, "schema_version": 3, "solution": true, "task": false}
def tokenize(sequences: list[str]) -> Int[np.ndarray, "batch length"]:
    """`<cls> residues <eos> <pad>...` for every sequence, padded to the longest."""
    # Hint: a dict {letter: index} built once from ALPHABET; np.full((batch, length), PAD).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'tokenize' is not done yet: replace this line with your code.")


# %%
check("tokenize")

# %% [markdown]
# The first two proteins of the course proteome, cut to 12 residues, and an odd one:

# %%
first_two = [sequence[:12] for sequence in list(proteins.proteome().values())[:2]]
print(first_two + ["mk*"])
print(tokenize(first_two + ["mk*"]))

# %% [markdown]
# ## Exercise 2: masking, ESM-2's way
#
# Choose each **residue** (a token that is neither `<cls>`, `<eos>`, `<pad>` nor already
# `<mask>`) independently with probability `rate` (15%). The model is asked to predict
# the original token at the chosen positions. Of the chosen positions
# - 80% become `<mask>`,
# - 10% become a random standard amino acid (uniform over `AMINO_ACID_TOKENS`),
# - 10% keep their token,
#
# so that the model cannot learn to look at `<mask>` positions only: any residue might be
# a target. Write `mask_tokens(tokens, key)` for one sequence; return the corrupted
# tokens and the boolean array of chosen positions. Use every key once.

# %% nbgrader={"grade": false, "grade_id": "mask_tokens", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mask_tokens(
    tokens: Int[Array, " seq"], key: PRNGKeyArray, rate: float = 0.15
) -> tuple[Int[Array, " seq"], Bool[Array, " seq"]]:
    """(corrupted tokens, chosen positions), ESM-2's 80/10/10 corruption of a `rate` of residues."""
    # Hint: three keys: uniform draws for "chosen?" and "which of 80/10/10?", randint for the random residues.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'mask_tokens' is not done yet: replace this line with your code.")


# %%
check("mask_tokens")


# %% [markdown]
# A protein before and after: `<mask>` shows as `#`, a swapped residue in lower case.

# %%
def show(tokens, original=None):
    letters = []
    for i, token in enumerate(np.asarray(tokens)):
        letter = "#" if token == MASK else ALPHABET[token] if len(ALPHABET[token]) == 1 else ""
        if original is not None and token not in (MASK, original[i]):
            letter = letter.lower()
        letters.append(letter)
    return "".join(letters)


sequence = list(proteins.proteome().values())[0][:60]
tokens = jnp.asarray(tokenize([sequence])[0])
corrupted, chosen = mask_tokens(tokens, jax.random.key(0))
print(show(tokens))
print(show(corrupted, np.asarray(tokens)))
print(f"{int(chosen.sum())} of {len(sequence)} residues to predict")

# %% [markdown]
# ## Exercise 3: the masked-language-model loss
#
# The model returns logits over the 33 tokens at every position. The loss is the
# cross-entropy with the **original** token, averaged over the chosen positions only
# (predicting an unchanged, visible residue elsewhere would be too easy):
#
# $$
# \mathcal{L} = -\frac{1}{|M|} \sum_{i \in M} \log \operatorname{softmax}(\ell_i)_{x_i}.
# $$
#
# Write `masked_lm_loss(logits, targets, chosen)` for one sequence. If nothing is chosen,
# return 0 (divide by `max(|M|, 1)`).

# %% nbgrader={"grade": false, "grade_id": "masked_lm_loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def masked_lm_loss(
    logits: Float[Array, "seq vocab"], targets: Int[Array, " seq"], chosen: Bool[Array, " seq"]
) -> Float[Array, ""]:
    """Mean over the chosen positions of -log softmax(logits[i])[targets[i]]."""
    # Hint: jax.nn.log_softmax, jnp.take_along_axis, then a sum weighted by `chosen`.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'masked_lm_loss' is not done yet: replace this line with your code.")


# %%
check("masked_lm_loss")

# %% [markdown]
# ## The loss of the course's model
#
# The shipped model (`load_protein_lm()`, 4 layers, about 0.8 M parameters) never saw the
# held-out proteins: they come from homology clusters kept out of training. Its
# perplexity $e^{\mathcal{L}}$ on them, next to two baselines: guessing uniformly among the
# 20 amino acids (perplexity 20), and guessing by the amino-acid frequencies of the
# training proteins (about 17). Real ESM-2 models, trained on millions of families, reach
# perplexities of 6 to 10.

# %%
from course.pretrained.protein_lm import load_protein_lm, model_config

model = load_protein_lm()
_, held_out = proteins.proteome_split()
held_out_sequences = [sequence[:126] for sequence in list(held_out.values())[:64]]
batch = jnp.asarray(tokenize(held_out_sequences))
keys = jax.random.split(jax.random.key(1), len(batch))
corrupted, chosen = jax.vmap(mask_tokens)(batch, keys)
logits = jax.jit(jax.vmap(model))(corrupted)
losses, counts = jax.vmap(masked_lm_loss)(logits, batch, chosen), chosen.sum(axis=1, dtype=jnp.float32)
loss = jnp.sum(losses * counts) / jnp.sum(counts)
print(f"held-out masked perplexity of the course model on {len(batch)} proteins: {float(jnp.exp(loss)):.2f}")
print("recorded at training time:", model_config()["held_out"])
