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

check = exercise_checks("protein/03_scoring", globals())

# %% [markdown]
# # Protein 3: scoring sequences and mutations with a language model
#
# A masked language model gives, at every position, a probability for each amino acid
# given the rest of the protein. Three uses follow, with no labelled data at all:
#
# - **How natural is a sequence?** The pseudo-log-likelihood sums, over positions, the
#   log-probability of the true residue when that one position is masked.
# - **Which mutations does a protein tolerate?** The masked-marginal score of a mutation
#   compares the mutant and the wild-type residue at a masked position (Meier et al.
#   2021): evolution rarely keeps what breaks the fold, so low scores flag damaging
#   mutations.
# - **A vector per protein**, the mean of the last layer's representations, as input to
#   a predictor of any property (next notebook).
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. `model` is a
# `course.nn.protein_lm.ProteinLM`: `model(tokens)` gives logits `(seq, 33)` for one
# tokenised sequence, `model.representations(tokens)` the last layer `(seq, dim)`. Check
# your work with `uv run pytest exercises/protein/test_03_scoring.py`.

# %%
import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Array, Float, Int

from course import metrics
from course.data import proteins
from course.nn.protein_lm import AMINO_ACID_TOKENS, AMINO_ACIDS, CLS, EOS, MASK, PAD, ProteinLM, tokenize
from course.pretrained.protein_lm import load_protein_lm
from course.training import quick_mode

# %% [markdown]
# ## Exercise 1: pseudo-log-likelihood
#
# For every residue position $i$ (not `<cls>`, `<eos>` or `<pad>`), replace token $i$ by
# `<mask>`, run the model, and read off $\log p(x_i \mid x_{\setminus i})$; return the sum
# over residues. That is one forward pass per residue: build all the masked copies at
# once, shape `(seq, seq)`, and `jax.vmap` the model over them.

# %% nbgrader={"grade": false, "grade_id": "pseudo_log_likelihood", "locked": false, "schema_version": 3, "solution": true, "task": false}
def pseudo_log_likelihood(model: ProteinLM, tokens: Int[Array, " seq"]) -> Float[Array, ""]:
    """Sum over residue positions i of log p(tokens[i] | tokens with i masked)."""
    # Hint: copies = jnp.where(jnp.eye(seq, dtype=bool), MASK, tokens[None, :]); then the diagonal.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'pseudo_log_likelihood' is not done yet: replace this line with your code.")


# %%
check("pseudo_log_likelihood")

# %% [markdown]
# ### Natural or shuffled?
#
# A shuffled protein has the same amino-acid composition as a natural one, so a model
# that only learned frequencies cannot tell them apart. The course model can, a little:
# it learned some grammar of real proteins (held-out proteins, first 60 residues;
# pseudo-log-likelihood per residue).

# %%
model = load_protein_lm()
_, held_out = proteins.proteome_split()
count = 6 if quick_mode() else 30
rng = np.random.default_rng(0)
natural = [sequence[:60] for sequence in list(held_out.values())[:count]]
shuffled = ["".join(rng.permutation(list(sequence))) for sequence in natural]
pll = eqx.filter_jit(pseudo_log_likelihood)
score = lambda sequence: float(pll(model, jnp.asarray(tokenize(sequence)))) / len(sequence)
natural_scores = np.array([score(s) for s in natural])
shuffled_scores = np.array([score(s) for s in shuffled])
plt.hist(natural_scores, bins=12, alpha=0.6, label="natural")
plt.hist(shuffled_scores, bins=12, alpha=0.6, label="shuffled")
plt.xlabel("pseudo-log-likelihood per residue")
plt.legend()
plt.show()
print(f"AUC natural vs shuffled: {metrics.roc_auc(natural_scores, shuffled_scores):.2f} (0.5 is chance)")

# %% [markdown]
# ## Exercise 2: masked-marginal mutation scores
#
# For every position $i$ of `tokens` and every standard amino acid $a$ (the order of
# `AMINO_ACIDS`, tokens `AMINO_ACID_TOKENS`), the score of mutating $x_i$ to $a$ is
#
# $$
# s_{i,a} = \log p(a \mid x_{\setminus i}) - \log p(x_i \mid x_{\setminus i}),
# $$
#
# with position $i$ masked. Return the `(seq, 20)` matrix (rows for every position; the
# rows of `<cls>` and `<eos>` mean nothing and callers drop them). The wild-type residue
# scores 0; a positive score is a mutation the model likes better than the wild type.

# %% nbgrader={"grade": false, "grade_id": "mutation_scores", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mutation_scores(model: ProteinLM, tokens: Int[Array, " seq"]) -> Float[Array, "seq 20"]:
    """s[i, a] = log p(AMINO_ACIDS[a] | i masked) - log p(tokens[i] | i masked)."""
    # Hint: the same masked copies as above; index the vocab axis with jnp.asarray(AMINO_ACID_TOKENS).
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'mutation_scores' is not done yet: replace this line with your code.")


# %%
check("mutation_scores")

# %% [markdown]
# ### Zero-shot stability of GB1 mutants
#
# Nisthal et al. (2019) measured the folding stability of nearly every single mutant of
# GB1, a 56-residue domain. Without seeing any of these numbers, do the model's scores
# rank the mutants? (Spearman correlation; the map shows the scores, residue by residue.)
# Expect little from the course's model: 0.8 M parameters that saw 2,000 proteins of one
# bacterium, none of them related to GB1, score about -0.1 (chance). Zero-shot scoring
# works with models trained on millions of protein families (Meier et al. 2021): load
# ESM-2 with `course.pretrained.protein_lm.from_esm2quinox` and run this cell again.

# %%
gb1 = proteins.gb1_stability()
scores = np.asarray(eqx.filter_jit(mutation_scores)(model, jnp.asarray(tokenize(gb1.wild_type))))[1:-1]
column = {residue: j for j, residue in enumerate(AMINO_ACIDS)}
predicted = np.array([scores[int(name[1:-1]) - 2, column[name[-1]]] for name in gb1.mutations])
print(f"Spearman(model score, measured stability) over {len(gb1)} mutants: "
      f"{metrics.spearman(predicted, gb1.stability):.2f}")
fig, ax = plt.subplots(figsize=(10, 3))
image = ax.imshow(scores.T, aspect="auto", cmap="RdBu", vmin=-6, vmax=6, extent=(1.5, 56.5, 19.5, -0.5))
ax.set_yticks(range(20), list(AMINO_ACIDS), fontsize="x-small")
ax.set_xlabel("GB1 residue")
fig.colorbar(image, ax=ax, label="masked-marginal score")
plt.show()

# %% [markdown]
# ## Exercise 3: one vector per protein
#
# Write `sequence_embedding(model, tokens)`: the mean of `model.representations(tokens)`
# over the residue positions (leave out `<cls>`, `<eos>` and `<pad>`, so that padding a
# sequence does not change its embedding).

# %% nbgrader={"grade": false, "grade_id": "sequence_embedding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sequence_embedding(model: ProteinLM, tokens: Int[Array, " seq"]) -> Float[Array, " dim"]:
    """Mean of the final representations over residue positions."""
    # Hint: a boolean weight per position, then a weighted mean over axis 0.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'sequence_embedding' is not done yet: replace this line with your code.")


# %%
check("sequence_embedding")

# %% [markdown]
# Embeddings of the GB1 mutants, projected on their two main axes (principal components)
# and coloured by measured stability. The next notebook fits a predictor on them.

# %%
batch = jnp.asarray(np.stack([tokenize(sequence) for sequence in gb1.sequences]))
embeddings = np.asarray(eqx.filter_jit(jax.vmap(sequence_embedding, in_axes=(None, 0)))(model, batch))
centred = embeddings - embeddings.mean(0)
_, _, axes = np.linalg.svd(centred, full_matrices=False)
projected = centred @ axes[:2].T
plt.scatter(projected[:, 0], projected[:, 1], c=gb1.stability, cmap="viridis", s=8)
plt.colorbar(label="stability (kcal/mol)")
plt.xlabel("PC 1")
plt.ylabel("PC 2")
plt.show()
