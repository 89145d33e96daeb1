"""Hidden tests for 01_tokens_and_masking.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from course.nn.protein_lm import AMINO_ACID_TOKENS, CLS, EOS, MASK, PAD
from grader import checks
from grader.inputs import normals

LETTERS = list("ACDEFGHIKLMNPQRSTVWYacdefghiklmnpqrstvwyXBUZO.-*J1 ")


def random_sequences(rng, count):
    return ["".join(rng.choice(LETTERS, size=int(rng.integers(1, 30)))) for _ in range(count)]


def random_tokens(rng, batch, length, with_masks=False):
    tokens = np.full((batch, length), PAD, np.int32)
    for row in range(batch):
        n = int(rng.integers(1, length - 1))
        residues = rng.choice(AMINO_ACID_TOKENS, size=n)
        if with_masks:
            residues[rng.random(n) < 0.1] = MASK
        tokens[row, : n + 2] = [CLS, *residues, EOS]
    return tokens


@pytest.mark.exercise("tokenize")
@pytest.mark.points(2)
def test_tokenize_matches_reference(submission, reference, rng):
    sequences = random_sequences(rng, int(rng.integers(1, 6)))
    checks.assert_close(np.asarray(submission.tokenize(sequences)), reference.tokenize(sequences),
                        call=f"tokenize({sequences!r})")


@pytest.mark.exercise("mask_tokens")
@pytest.mark.points(2)
def test_mask_tokens_statistics_at_another_rate(submission, rng, getkey):
    rate = float(rng.choice([0.3, 0.5]))
    tokens = random_tokens(rng, 150, 100, with_masks=True)
    keys = jax.random.split(getkey(), len(tokens))
    corrupted, chosen = submission.evaluate(lambda: checks.jitted(
        jax.vmap(submission.mask_tokens, in_axes=(0, 0, None)), tokens, keys, rate,
        call=f"jit(vmap(mask_tokens)) with rate={rate}"))
    corrupted, chosen = np.asarray(corrupted), np.asarray(chosen)
    eligible = (tokens != CLS) & (tokens != EOS) & (tokens != PAD) & (tokens != MASK)
    if (chosen & ~eligible).any():
        checks.fail("mask_tokens chose a special token (<cls>, <eos>, <pad>) or a position already <mask>.")
    if (corrupted[~chosen] != tokens[~chosen]).any():
        checks.fail("mask_tokens changed a token at a position it did not choose.")
    got_rate = chosen.sum() / eligible.sum()
    if abs(got_rate - rate) > 0.02:
        checks.fail(f"mask_tokens(..., rate={rate}) chose {got_rate:.1%} of the residues.")
    to_mask = (corrupted[chosen] == MASK).mean()
    swapped = chosen & (corrupted != MASK) & (corrupted != tokens)
    if not (0.77 < to_mask < 0.83 and 0.075 < swapped.sum() / chosen.sum() < 0.115):
        checks.fail(f"{to_mask:.1%} of chosen positions became <mask>, {swapped.sum() / chosen.sum():.1%} a "
                    "different residue; expected 80% and 9.5% (10% random, 1 in 20 equal to the original).")
    if not np.isin(corrupted[swapped], AMINO_ACID_TOKENS).all():
        checks.fail("a random replacement is not one of the 20 standard amino acids.")
    if len(np.unique(corrupted[swapped])) < 20:
        checks.fail("the random replacements do not cover all 20 standard amino acids.")


@pytest.mark.exercise("mask_tokens")
@pytest.mark.points(1)
def test_mask_tokens_draws_random_residues_uniformly(submission, rng, getkey):
    tokens = random_tokens(rng, 400, 200)
    keys = jax.random.split(getkey(), len(tokens))
    corrupted = np.asarray(submission.evaluate(lambda: checks.jitted(
        jax.vmap(submission.mask_tokens, in_axes=(0, 0, None)), tokens, keys, 1.0,
        call="jit(vmap(mask_tokens)) with rate=1.0"))[0])
    # The originals are uniform, so residues that differ from them are uniform over the 20 too.
    swapped = corrupted[(corrupted != MASK) & (corrupted != tokens)]
    counts = np.array([(swapped == token).sum() for token in AMINO_ACID_TOKENS])
    expected = len(swapped) / len(AMINO_ACID_TOKENS)
    chi_square = ((counts - expected) ** 2 / expected).sum()
    if len(swapped) < 1000 or chi_square > 60:  # 19 degrees of freedom: 60 has p below 1e-6
        rarest, commonest = np.argmin(counts), np.argmax(counts)
        checks.fail(f"the random replacements are not uniform over the 20 standard amino acids: of {len(swapped)}, "
                    f"{counts[commonest]} are token {AMINO_ACID_TOKENS[commonest]} and {counts[rarest]} token "
                    f"{AMINO_ACID_TOKENS[rarest]} (about {expected:.0f} each expected).")


@pytest.mark.exercise("mask_tokens")
@pytest.mark.points(1)
def test_mask_tokens_uses_its_key_once(submission, rng, getkey):
    tokens, key = random_tokens(rng, 1, 60)[0], getkey()
    submission.evaluate(lambda: checks.assert_no_key_reuse(submission.mask_tokens, tokens, key,
                                                           call="mask_tokens(tokens, key)"))


@pytest.mark.exercise("masked_lm_loss")
@pytest.mark.points(2)
def test_masked_lm_loss_matches_reference(submission, reference, rng):
    length = int(rng.integers(3, 20))
    logits = 3.0 * normals(rng, length, 33)
    targets = rng.integers(0, 33, size=length).astype(np.int32)
    chosen = rng.random(length) < 0.4
    chosen[0] = True
    got = submission.evaluate(lambda: checks.jitted(submission.masked_lm_loss, logits, targets, chosen,
                                                    call="jit(masked_lm_loss)"))
    checks.assert_close(got, jax.jit(reference.masked_lm_loss)(logits, targets, chosen),
                        call=f"masked_lm_loss(logits ({length}, 33), targets, chosen)", rtol=1e-5, atol=1e-6)
    only_first = np.arange(length) == 0  # one chosen position: the mean is its own loss
    got = submission.evaluate(lambda: checks.jitted(submission.masked_lm_loss, logits, targets, only_first,
                                                    call="jit(masked_lm_loss)"))
    checks.assert_close(got, jax.jit(reference.masked_lm_loss)(logits, targets, only_first),
                        call=f"masked_lm_loss(logits ({length}, 33), targets, one chosen position)",
                        rtol=1e-5, atol=1e-6)

    def grad(namespace):
        return jax.jit(jax.grad(namespace.masked_lm_loss))(logits, targets, chosen)

    checks.assert_close(submission.evaluate(grad, submission), grad(reference),
                        call="grad of masked_lm_loss with respect to the logits", rtol=1e-4, atol=1e-6)
