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

check = exercise_checks("protein/04_design", globals())

# %% [markdown]
# # Protein 4: designing a more stable GB1
#
# The engineer's loop: measure some variants, fit a model that predicts the property,
# search sequence space for variants the model rates highly, make the best. Two dangers:
# the predictor is trusted far from its data, and the search finds sequences that
# exploit its errors. A protein language model helps with both: its representations are
# good features, and its scores keep the search among sequences that look natural.
#
# Here: fit ridge regressions that predict GB1 stability from one-hot encodings or from
# the language model's embeddings, then search with **simulated annealing** for variants
# with at most `MAX_MUTATIONS` mutations, high predicted stability and high language-model
# plausibility. An oracle kept by the instructors (`grader.protein_oracle`, fitted on all
# measurements) scores your best design.
#
# **Rules.** Fill in the cells marked `YOUR CODE HERE`. Check your work with
# `uv run pytest exercises/protein/test_04_design.py`.

# %%
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from course import metrics
from course.data import proteins
from course.nn.protein_lm import AMINO_ACID_TOKENS, AMINO_ACIDS, CLS, EOS, MASK, tokenize
from course.pretrained.protein_lm import load_protein_lm
from course.training import quick_mode

MAX_MUTATIONS = 4

# %% [markdown]
# ## The data and two kinds of features
#
# 813 single mutants of GB1 with their measured stability (kcal/mol; higher is more
# stable). Features: the **one-hot** encoding of the sequence (55 positions x 20 amino
# acids), the course model's **embedding** (mean last-layer representation, as in the
# previous notebook), and both side by side. Mutants are split at random, 80% to fit,
# 20% to test.

# %%
gb1 = proteins.gb1_stability()
model = load_protein_lm()
residue_index = {residue: i for i, residue in enumerate(AMINO_ACIDS)}


def residues_of(sequence: str) -> np.ndarray:
    """Amino-acid indices 0..19 (order of AMINO_ACIDS) of a sequence."""
    return np.array([residue_index[residue] for residue in sequence], dtype=np.int32)


def one_hot(residues: Int[Array, "... length"]) -> Float[Array, "... features"]:
    """Flattened one-hot encoding of amino-acid indices: length * 20 features."""
    return jax.nn.one_hot(residues, 20).reshape(*residues.shape[:-1], -1)


def embedding(sequences: list[str]) -> np.ndarray:
    tokens = jnp.asarray(np.stack([tokenize(sequence) for sequence in sequences]))
    representations = jax.jit(jax.vmap(model.representations))(tokens)[:, 1:-1]  # residues only
    return np.asarray(representations.mean(axis=1))


residues = np.stack([residues_of(sequence) for sequence in gb1.sequences])
features = {"one-hot": np.asarray(one_hot(residues)), "embedding": embedding(list(gb1.sequences))}
standardised = (features["embedding"] - features["embedding"].mean(0)) / features["embedding"].std(0)
features["both"] = np.hstack([features["one-hot"], standardised])
split = np.random.default_rng(0).permutation(len(gb1))
train, test = split[: int(0.8 * len(gb1))], split[int(0.8 * len(gb1)) :]
print({name: value.shape for name, value in features.items()})

# %% [markdown]
# ## Exercise 1: ridge regression
#
# Fit $\hat y = X w + b$ minimising $\lVert y - Xw - b \rVert^2 + \lambda \lVert w \rVert^2$
# (the bias is not penalised). Centre $X$ and $y$ by their means $\bar x$, $\bar y$; then
#
# $$
# w = (X_c^\top X_c + \lambda I)^{-1} X_c^\top y_c, \qquad b = \bar y - \bar x \cdot w.
# $$
#
# Write `fit_ridge(features, targets, l2)` returning `(w, b)`; use `jnp.linalg.solve`,
# never an explicit inverse.

# %% nbgrader={"grade": false, "grade_id": "fit_ridge", "locked": false, "schema_version": 3, "solution": true, "task": false}
def fit_ridge(
    features: Float[Array, "n d"], targets: Float[Array, " n"], l2: float
) -> tuple[Float[Array, " d"], Float[Array, ""]]:
    """Weights and bias of ridge regression with penalty l2 * |w|^2 (bias unpenalised)."""
    # Hint: (X_c.T @ X_c + l2 * jnp.eye(d)) w = X_c.T @ y_c.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'fit_ridge' is not done yet: replace this line with your code.")


# %%
check("fit_ridge")

# %% [markdown]
# Held-out Spearman correlation for each kind of features, over a few penalties. Single
# mutants are a hard case for one-hot features: the test mutant's amino acid at its
# position was never seen, so one-hot can only learn how much each position tolerates
# change. The embedding also knows which amino acid came in; together (the embedding
# standardised, so that one penalty suits both) they do better than either.

# %%
stability = gb1.stability
for name, x in features.items():
    results = []
    for l2 in (0.1, 1.0, 10.0, 100.0, 1000.0):
        w, b = fit_ridge(jnp.asarray(x[train]), jnp.asarray(stability[train]), l2)
        results.append(f"l2={l2:g}: {metrics.spearman(np.asarray(x[test] @ w + b), stability[test]):.2f}")
    print(f"{name:>9}: " + ", ".join(results))

# %% [markdown]
# ## Exercise 2: one step of simulated annealing
#
# The search walks through sequences (amino-acid indices, shape `(length,)`), one mutation
# at a time, and prefers higher `score_fn(sequence)`. One **Metropolis step** at
# temperature $T$:
# 1. pick a position uniformly, and a *different* amino acid uniformly among the 19 others
#    (`(old + jax.random.randint(key, (), 1, 20)) % 20` does it);
# 2. accept the proposal with probability $\min(1, e^{(s_{new} - s_{old})/T})$, i.e. if
#    $\log u < (s_{new} - s_{old}) / T$ for $u \sim U(0, 1)$;
# 3. return the new sequence and score if accepted, the old ones otherwise.
#
# Lowering $T$ slowly turns a random walk into a greedy climb: early on the search can
# cross valleys, at the end it settles on a peak. Write `metropolis_step`; it must work
# under `jit`, `vmap` (several chains) and `lax.scan` (many steps), so no Python `if`.

# %% nbgrader={"grade": false, "grade_id": "metropolis_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def metropolis_step(
    key: PRNGKeyArray,
    sequence: Int[Array, " length"],
    score: Float[Array, ""],
    score_fn: Callable[[Int[Array, " length"]], Float[Array, ""]],
    temperature: Float[Array, ""],
) -> tuple[Int[Array, " length"], Float[Array, ""]]:
    """Propose one random substitution; accept it with the Metropolis rule at `temperature`."""
    # Hint: three keys (position, new residue, acceptance); jnp.where(accept, new, old) for both outputs.
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 'metropolis_step' is not done yet: replace this line with your code.")


# %%
check("metropolis_step")

# %% [markdown]
# ## The search
#
# The objective, for a variant $x$ of the wild type $x^{wt}$:
#
# $$
# \text{predicted stability}(x) + \lambda \sum_{i:\, x_i \neq x^{wt}_i} s_{i, x_i}
# - 10 \cdot \max(0, \#\text{mutations} - 4),
# $$
#
# with the one-hot ridge predictor fitted on the 80% training mutants (the oracle below
# knows all 813: the search may pick mutations our predictor never saw), and $s$ the
# masked-marginal scores of the wild type from the language model (previous notebook;
# summing them over mutations is the usual additive approximation). $\lambda$ trades
# predicted stability against plausibility: with $\lambda = 0$ the search trusts the
# predictor blindly. Eight chains run side by side (`vmap`), 2,000 steps each (`lax.scan`),
# the temperature falling geometrically from 1 to 0.01.

# %%
wild_type = jnp.asarray(residues_of(gb1.wild_type))
wild_tokens = jnp.asarray(tokenize(gb1.wild_type))
length = wild_tokens.shape[0]
copies = jnp.where(jnp.eye(length, dtype=bool), MASK, wild_tokens[None, :])
log_probabilities = jax.nn.log_softmax(jax.jit(jax.vmap(model))(copies), axis=-1)[jnp.arange(length), jnp.arange(length)]
amino_acid_tokens = jnp.asarray(AMINO_ACID_TOKENS)
plm_scores = (log_probabilities[:, amino_acid_tokens] - log_probabilities[jnp.arange(length), wild_tokens][:, None])[1:-1]
assert int(wild_tokens[0]) == CLS and int(wild_tokens[-1]) == EOS
w_onehot, b_onehot = fit_ridge(jnp.asarray(features["one-hot"][train]), jnp.asarray(stability[train]), 1.0)


def objective(sequence, plausibility_weight):
    mutated = sequence != wild_type
    predicted = one_hot(sequence) @ w_onehot + b_onehot
    plausibility = jnp.sum(jnp.where(mutated, plm_scores[jnp.arange(sequence.shape[0]), sequence], 0.0))
    too_many = jnp.maximum(jnp.sum(mutated) - MAX_MUTATIONS, 0)
    return predicted + plausibility_weight * plausibility - 10.0 * too_many


def anneal(key, plausibility_weight, num_steps=2_000, num_chains=8):
    score_fn = lambda sequence: objective(sequence, plausibility_weight)
    temperatures = jnp.geomspace(1.0, 0.01, num_steps)

    def chain(chain_key):
        def step(carry, inputs):
            step_key, temperature = inputs
            return metropolis_step(step_key, *carry, score_fn, temperature), None

        keys = jax.random.split(chain_key, num_steps)
        (sequence, score), _ = jax.lax.scan(step, (wild_type, score_fn(wild_type)), (keys, temperatures))
        return sequence, score

    sequences, scores = jax.jit(jax.vmap(chain))(jax.random.split(key, num_chains))
    return sequences[jnp.argmax(scores)]


def describe(sequence):
    sequence = np.asarray(sequence)
    mutations = [f"{gb1.wild_type[i]}{i + 2}{AMINO_ACIDS[a]}" for i, a in enumerate(sequence) if a != wild_type[i]]
    predicted = float(one_hot(jnp.asarray(sequence)) @ w_onehot + b_onehot)
    plausibility = float(sum(plm_scores[i, a] for i, a in enumerate(sequence) if a != wild_type[i]))
    return mutations, predicted, plausibility


num_steps = 100 if quick_mode() else 2_000
designs = {}
for weight in (0.0, 0.3):
    design = anneal(jax.random.key(0), weight, num_steps=num_steps)
    designs[weight] = "".join(AMINO_ACIDS[a] for a in np.asarray(design))
    mutations, predicted, plausibility = describe(design)
    print(f"lambda={weight}: {' '.join(mutations)}; predicted stability {predicted:.2f} "
          f"(wild type {float(one_hot(wild_type) @ w_onehot + b_onehot):.2f}), plausibility {plausibility:.1f}")

# %% [markdown]
# ## The competition
#
# Your best design is scored by the instructors' oracle, an additive model fitted on all
# 813 measurements. You have the same data, so fitting your predictor on all of it and
# taking the four best single mutants wins trivially: the competition is to design from
# the 80% training mutants and the language model only. Score your design with
#
#     uv run python -m grader.protein_oracle YOUR_SEQUENCE
#
# which prints the oracle's stability change, the number of mutations (at most
# `MAX_MUTATIONS` count) and the course model's plausibility. Designs of the reference
# solution:

# %%
for weight, design in designs.items():
    print(f"lambda={weight}: {design}")
