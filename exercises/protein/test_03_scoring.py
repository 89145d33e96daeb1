"""Visible tests for 03_scoring.py.

Run them with `uv run pytest exercises/protein/test_03_scoring.py`
(add `--exercise mutation_scores` to check a single exercise).
"""

import jax
import numpy as np
import pytest

from course.nn.protein_lm import AMINO_ACID_TOKENS, CLS, EOS, MASK, PAD, ProteinLM
from grader import checks


@pytest.fixture
def model(getkey):
    return ProteinLM(dim=16, num_layers=2, num_heads=2, key=getkey())


def tokens_of(rng, residues, padding=0):
    return np.array([CLS, *rng.choice(AMINO_ACID_TOKENS, size=residues), EOS] + [PAD] * padding, np.int32)


def masked_log_probabilities(model, tokens):
    """Row i: log p(. | tokens with position i masked) at position i; the masked copies
    are built one by one with NumPy, then run in one batch."""
    copies = np.stack([tokens] * len(tokens))
    for i in range(len(tokens)):
        copies[i, i] = MASK
    logits = np.asarray(jax.jit(jax.vmap(lambda t: model(t)))(copies))
    return np.stack([jax.nn.log_softmax(logits[i, i]) for i in range(len(tokens))])


@pytest.mark.exercise("pseudo_log_likelihood")
def test_pseudo_log_likelihood_equals_a_loop(submission, model, rng):
    tokens = tokens_of(rng, 6, padding=2)
    log_p = masked_log_probabilities(model, tokens)
    expected = np.float32(sum(log_p[i, tokens[i]] for i in range(1, 7)))
    got = checks.jitted(lambda t: submission.pseudo_log_likelihood(model, t), tokens, call="jit(pseudo_log_likelihood)")
    checks.assert_close(got, expected, call="pseudo_log_likelihood(model, 6 residues + 2 pads)", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("mutation_scores")
def test_mutation_scores_equal_a_loop(submission, model, rng):
    tokens = tokens_of(rng, 5)
    log_p = masked_log_probabilities(model, tokens)
    expected = np.zeros((7, 20), np.float32)
    for i in range(7):
        expected[i] = log_p[i, AMINO_ACID_TOKENS] - log_p[i, tokens[i]]
    got = checks.jitted(lambda t: submission.mutation_scores(model, t), tokens, call="jit(mutation_scores)")
    checks.assert_close(got, expected, call="mutation_scores(model, tokens (7,))", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("sequence_embedding")
def test_sequence_embedding_is_the_residue_mean_and_ignores_padding(submission, model, rng):
    tokens = tokens_of(rng, 4)
    expected = np.asarray(jax.jit(lambda t: model.representations(t))(tokens))[1:-1].mean(axis=0)
    embed = jax.jit(lambda t: submission.sequence_embedding(model, t))
    got = checks.jitted(lambda t: submission.sequence_embedding(model, t), tokens, call="jit(sequence_embedding)")
    checks.assert_close(got, expected, call="sequence_embedding(model, tokens (6,))", rtol=1e-4, atol=1e-5)
    padded = np.concatenate([tokens, [PAD] * 3]).astype(np.int32)
    checks.assert_close(embed(padded), expected,
                        call="sequence_embedding(model, the same tokens + 3 pads)", rtol=1e-4, atol=1e-5)
