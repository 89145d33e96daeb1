"""Hidden tests for 03_scoring.py: the student's functions against the reference, on tiny random models."""

import jax
import numpy as np
import pytest

from course.nn.protein_lm import AMINO_ACID_TOKENS, CLS, EOS, MASK, PAD, ProteinLM
from grader import checks


def random_model(rng, key):
    num_heads = int(rng.integers(1, 3))
    return ProteinLM(dim=8 * num_heads, num_layers=int(rng.integers(1, 3)), num_heads=num_heads, key=key)


def random_tokens(rng, with_mask=False):
    residues, padding = int(rng.integers(2, 10)), int(rng.integers(0, 4))
    body = rng.choice(AMINO_ACID_TOKENS, size=residues)
    if with_mask:
        body[0] = MASK
    return np.array([CLS, *body, EOS] + [PAD] * padding, np.int32)


@pytest.mark.exercise("pseudo_log_likelihood")
@pytest.mark.points(2)
def test_pseudo_log_likelihood_matches_reference(submission, reference, rng, getkey):
    model, tokens = random_model(rng, getkey()), random_tokens(rng)
    got = submission.evaluate(lambda: checks.jitted(lambda t: submission.pseudo_log_likelihood(model, t), tokens,
                                                    call="jit(pseudo_log_likelihood)"))
    checks.assert_close(got, jax.jit(lambda t: reference.pseudo_log_likelihood(model, t))(tokens),
                        call=f"pseudo_log_likelihood(model, tokens {tokens.tolist()})", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("pseudo_log_likelihood")
@pytest.mark.points(1)
def test_pseudo_log_likelihood_batches_with_vmap(submission, reference, rng, getkey):
    model = random_model(rng, getkey())
    batch = np.stack([random_tokens(rng)[:5] for _ in range(3)])
    batch[:, -1] = EOS
    got = submission.evaluate(lambda: checks.jitted(jax.vmap(lambda t: submission.pseudo_log_likelihood(model, t)),
                                                    batch, call="jit(vmap(pseudo_log_likelihood))"))
    expected = jax.jit(jax.vmap(lambda t: reference.pseudo_log_likelihood(model, t)))(batch)
    checks.assert_close(got, expected, call="vmap(pseudo_log_likelihood) over 3 sequences", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("mutation_scores")
@pytest.mark.points(3)
def test_mutation_scores_match_reference(submission, reference, rng, getkey):
    model, tokens = random_model(rng, getkey()), random_tokens(rng)
    got = submission.evaluate(lambda: checks.jitted(lambda t: submission.mutation_scores(model, t), tokens,
                                                    call="jit(mutation_scores)"))
    checks.assert_close(got, jax.jit(lambda t: reference.mutation_scores(model, t))(tokens),
                        call=f"mutation_scores(model, tokens {tokens.tolist()})", rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("sequence_embedding")
@pytest.mark.points(2)
def test_sequence_embedding_matches_reference(submission, reference, rng, getkey):
    model, tokens = random_model(rng, getkey()), random_tokens(rng, with_mask=True)
    got = submission.evaluate(lambda: checks.jitted(lambda t: submission.sequence_embedding(model, t), tokens,
                                                    call="jit(sequence_embedding)"))
    checks.assert_close(got, jax.jit(lambda t: reference.sequence_embedding(model, t))(tokens),
                        call=f"sequence_embedding(model, tokens {tokens.tolist()})", rtol=1e-4, atol=1e-5)
