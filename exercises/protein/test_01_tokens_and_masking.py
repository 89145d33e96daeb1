"""Visible tests for 01_tokens_and_masking.py.

Run them with `uv run pytest exercises/protein/test_01_tokens_and_masking.py`
(add `--exercise mask_tokens` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from course.nn.protein_lm import ALPHABET, AMINO_ACID_TOKENS, CLS, EOS, MASK, PAD, UNK
from grader import checks

M, K, V, A = (ALPHABET.index(letter) for letter in "MKVA")


@pytest.mark.exercise("tokenize")
def test_tokenize_two_sequences(submission):
    got = submission.tokenize(["MKV", "a"])
    expected = np.array([[CLS, M, K, V, EOS], [CLS, A, EOS, PAD, PAD]], dtype=np.int32)
    checks.assert_close(np.asarray(got), expected, call='tokenize(["MKV", "a"])')


@pytest.mark.exercise("tokenize")
def test_tokenize_unknown_letters(submission):
    got = submission.tokenize(["K*J", "KXK"])
    expected = np.array([[CLS, K, UNK, UNK, EOS], [CLS, K, ALPHABET.index("X"), K, EOS]], dtype=np.int32)
    checks.assert_close(np.asarray(got), expected, call='tokenize(["K*J", "KXK"])')


def random_tokens(rng, batch, length):
    """Rows `<cls> residues <eos> <pad>...` of random lengths."""
    tokens = np.full((batch, length), PAD, np.int32)
    for row in range(batch):
        n = int(rng.integers(1, length - 1))
        tokens[row, : n + 2] = [CLS, *rng.choice(AMINO_ACID_TOKENS, size=n), EOS]
    return tokens


@pytest.mark.exercise("mask_tokens")
def test_mask_tokens_proportions(submission, rng, getkey):
    tokens = random_tokens(rng, 200, 120)
    keys = jax.random.split(getkey(), len(tokens))
    corrupted, chosen = checks.jitted(jax.vmap(submission.mask_tokens), tokens, keys, call="jit(vmap(mask_tokens))")
    corrupted, chosen = np.asarray(corrupted), np.asarray(chosen)
    is_residue = (tokens != CLS) & (tokens != EOS) & (tokens != PAD)
    if (chosen & ~is_residue).any():
        checks.fail("mask_tokens chose a <cls>, <eos> or <pad> position; only residues may be chosen.")
    if (corrupted[~chosen] != tokens[~chosen]).any():
        checks.fail("mask_tokens changed a token at a position it did not choose.")
    rate = chosen.sum() / is_residue.sum()
    if not 0.14 < rate < 0.16:
        checks.fail(f"mask_tokens chose {rate:.1%} of the residues, expected about 15%.")
    to_mask = (corrupted[chosen] == MASK).mean()
    kept = (corrupted[chosen] == tokens[chosen]).mean()
    if not (0.77 < to_mask < 0.83 and 0.08 < kept < 0.13):
        checks.fail(f"of the chosen positions, {to_mask:.1%} became <mask> and {kept:.1%} kept their token; "
                    "expected 80% and 10% (plus the random residues that happen to equal the original, 0.5%).")
    swapped = corrupted[chosen & (corrupted != MASK)]
    if not np.isin(swapped, AMINO_ACID_TOKENS).all():
        checks.fail("a random replacement is not one of the 20 standard amino acids.")


@pytest.mark.exercise("mask_tokens")
def test_mask_tokens_depends_on_the_key(submission, rng, getkey):
    tokens = random_tokens(rng, 1, 100)[0]
    fn = jax.jit(submission.mask_tokens)
    first, second = fn(tokens, getkey()), fn(tokens, getkey())
    checks.assert_different(first[1], second[1], call="mask_tokens with two keys", why="chose the same positions")
    checks.assert_close(fn(tokens, jax.random.key(3))[1], fn(tokens, jax.random.key(3))[1],
                        call="mask_tokens twice with one key")


@pytest.mark.exercise("masked_lm_loss")
def test_masked_lm_loss_matches_optax(submission, rng):
    logits = rng.normal(size=(9, 33)).astype(np.float32)
    targets = rng.integers(0, 33, size=9).astype(np.int32)
    chosen = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0], bool)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    expected = jnp.asarray(np.asarray(losses)[chosen].mean())
    got = checks.jitted(submission.masked_lm_loss, logits, targets, chosen, call="jit(masked_lm_loss)")
    checks.assert_close(got, expected, call="masked_lm_loss(logits (9, 33), targets, chosen)", rtol=1e-5)


@pytest.mark.exercise("masked_lm_loss")
def test_masked_lm_loss_without_chosen_positions_is_zero(submission, rng):
    logits = rng.normal(size=(4, 33)).astype(np.float32)
    got = jax.jit(submission.masked_lm_loss)(logits, np.zeros(4, np.int32), np.zeros(4, bool))
    checks.assert_close(got, jnp.float32(0.0), call="masked_lm_loss with nothing chosen")
