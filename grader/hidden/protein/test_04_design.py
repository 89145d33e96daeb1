"""Hidden tests for 04_design.py: the student's functions against the reference, and the
Metropolis step's statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


@pytest.mark.exercise("fit_ridge")
@pytest.mark.points(2)
def test_fit_ridge_matches_reference(submission, reference, rng):
    n, d = int(rng.integers(5, 40)), int(rng.integers(1, 8))
    x, y = normals(rng, n, d), normals(rng, n)
    l2 = float(rng.choice([0.01, 1.0, 30.0]))
    got = submission.evaluate(lambda: checks.jitted(submission.fit_ridge, x, y, l2, call="jit(fit_ridge)"))
    checks.assert_close(got, jax.jit(reference.fit_ridge)(x, y, l2), call=f"fit_ridge(x ({n}, {d}), y, {l2})",
                        rtol=1e-3, atol=1e-4)


@pytest.mark.exercise("fit_ridge")
@pytest.mark.points(1)
def test_fit_ridge_with_more_features_than_examples(submission, reference, rng):
    x, y = normals(rng, 6, 15), normals(rng, 6)
    got = submission.evaluate(lambda: checks.jitted(submission.fit_ridge, x, y, 0.5, call="jit(fit_ridge)"))
    checks.assert_finite(got, call="fit_ridge(x (6, 15), y, 0.5)")
    checks.assert_close(got, jax.jit(reference.fit_ridge)(x, y, 0.5), call="fit_ridge(x (6, 15), y, 0.5)",
                        rtol=1e-3, atol=1e-4)


@pytest.mark.exercise("metropolis_step")
@pytest.mark.points(3)
def test_metropolis_step_statistics(submission, rng, getkey):
    length = int(rng.integers(3, 10))
    sequence = jnp.asarray(rng.integers(0, 20, size=length).astype(np.int32))
    gain = float(rng.choice([0.5, 1.5]))
    base = float(rng.choice([-2.0, 3.0]))  # the current score: only differences of scores may matter
    # Changing position 0 gains `gain`; anything else loses it.
    score_fn = lambda s: base + jnp.where(s[0] != sequence[0], gain, jnp.where(jnp.any(s != sequence), -gain, 0.0))
    temperature = float(rng.choice([0.7, 1.3]))
    keys = jax.random.split(getkey(), 6000)
    steps = lambda: jax.jit(jax.vmap(lambda key: submission.metropolis_step(key, sequence, jnp.float32(base), score_fn,
                                                                            jnp.float32(temperature))))(keys)
    new, scores = submission.evaluate(steps)
    new, scores = np.asarray(new), np.asarray(scores)
    changed = (new != np.asarray(sequence)).sum(axis=1)
    if changed.max() > 1:
        checks.fail("a Metropolis step changed more than one residue.")
    at_zero = new[:, 0] != np.asarray(sequence)[0]
    expected = 1 / length + (1 - 1 / length) * np.exp(-gain / temperature)
    if abs((changed == 1).mean() - expected) > 0.03:
        checks.fail(f"{(changed == 1).mean():.1%} of the proposals were accepted; with one position in {length} "
                    f"gaining {gain} and the others losing it at temperature {temperature}, expected {expected:.1%}.")
    if abs(at_zero.mean() - 1 / length) > 0.03:
        checks.fail(f"position 0 was mutated in {at_zero.mean():.1%} of the steps; a uniform position is 1/{length}, "
                    "and that move is always accepted.")
    if not np.allclose(scores, base + np.where(at_zero, gain, np.where(changed == 1, -gain, 0.0))):
        checks.fail("metropolis_step returned scores that are not score_fn of the returned sequences.")
    residues = new[at_zero, 0]
    if len(np.unique(residues)) != 19 or (residues == np.asarray(sequence)[0]).any():
        checks.fail("the proposals at a position do not cover the 19 other amino acids.")


@pytest.mark.exercise("metropolis_step")
@pytest.mark.points(1)
def test_every_metropolis_proposal_changes_one_residue(submission, rng, getkey):
    sequence = jnp.asarray(rng.integers(0, 20, size=int(rng.integers(3, 10))).astype(np.int32))
    score_fn = lambda s: jnp.where(jnp.any(s != sequence), 100.0, 0.0)  # every change is accepted
    keys = jax.random.split(getkey(), 2000)
    steps = lambda: jax.jit(jax.vmap(lambda key: submission.metropolis_step(key, sequence, jnp.float32(0.0), score_fn,
                                                                            jnp.float32(1.0))))(keys)
    new, _ = submission.evaluate(steps)
    changed = (np.asarray(new) != np.asarray(sequence)).sum(axis=1)
    if not (changed == 1).all():
        checks.fail(f"{(changed != 1).mean():.1%} of the proposals did not change exactly one residue; a proposal "
                    "puts one of the 19 other amino acids at one position.")
    if not ((np.asarray(new) >= 0) & (np.asarray(new) < 20)).all():
        checks.fail(f"a proposal put residue {int(np.asarray(new).max())} in the sequence; the 20 amino acids are "
                    "numbered 0 to 19.")


@pytest.mark.exercise("metropolis_step")
@pytest.mark.points(1)
def test_metropolis_step_uses_its_key_once(submission, rng, getkey):
    sequence = jnp.asarray(rng.integers(0, 20, size=6).astype(np.int32))
    score_fn = lambda s: jnp.sum(s).astype(jnp.float32)
    key = getkey()
    submission.evaluate(lambda: checks.assert_no_key_reuse(
        submission.metropolis_step, key, sequence, score_fn(sequence), score_fn, jnp.float32(1.0),
        call="metropolis_step(key, ...)"))
