"""Visible tests for 04_design.py.

Run them with `uv run pytest exercises/protein/test_04_design.py`
(add `--exercise metropolis_step` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks


@pytest.mark.exercise("fit_ridge")
def test_fit_ridge_solves_the_augmented_least_squares(submission, rng):
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0 + 0.1 * rng.normal(size=30)).astype(np.float32)
    l2 = 2.0
    # Ridge = least squares on [X 1; sqrt(l2) I 0] against [y; 0] (the bias column unpenalised).
    design = np.block([[x, np.ones((30, 1))], [np.sqrt(l2) * np.eye(4), np.zeros((4, 1))]])
    solution = np.linalg.lstsq(design, np.concatenate([y, np.zeros(4)]), rcond=None)[0]
    w, b = checks.jitted(submission.fit_ridge, x, y, l2, call="jit(fit_ridge)")
    checks.assert_close(w, solution[:4].astype(np.float32), call="fit_ridge(x (30, 4), y, 2.0)[0]", rtol=1e-3, atol=1e-4)
    checks.assert_close(b, np.float32(solution[4]), call="fit_ridge(x (30, 4), y, 2.0)[1]", rtol=1e-3, atol=1e-4)


def hamming(a, b):
    return int(np.sum(np.asarray(a) != np.asarray(b)))


@pytest.mark.exercise("metropolis_step")
def test_metropolis_step_changes_one_residue_and_keeps_scores(submission, rng, getkey):
    sequence = jnp.asarray(rng.integers(0, 20, size=12).astype(np.int32))
    score_fn = lambda s: jnp.sum(s).astype(jnp.float32)  # every change is a new score
    step = jax.jit(lambda key, T: submission.metropolis_step(key, sequence, score_fn(sequence), score_fn, T))
    for key in jax.random.split(getkey(), 20):
        new, score = step(key, 1e6)  # hot: every proposal is accepted
        if hamming(new, sequence) != 1:
            checks.fail(f"at a huge temperature, a step changed {hamming(new, sequence)} residues; expected 1 "
                        "(the proposal must pick a different amino acid, and be accepted).")
        checks.assert_close(score, score_fn(new), call="metropolis_step's score of the new sequence")
        if int(new.min()) < 0 or int(new.max()) >= 20:
            checks.fail("metropolis_step proposed an amino-acid index outside 0..19.")


@pytest.mark.exercise("metropolis_step")
def test_metropolis_step_acceptance_rate(submission, getkey):
    sequence = jnp.zeros(8, jnp.int32)
    score_fn = lambda s: jnp.where(jnp.any(s != 0), -1.0, 0.0)  # every change costs 1
    steps = jax.jit(jax.vmap(lambda key, T: submission.metropolis_step(key, sequence, jnp.float32(0.0), score_fn, T),
                             in_axes=(0, None)))
    keys = jax.random.split(getkey(), 4000)
    for temperature, expected in ((1.0, np.exp(-1.0)), (0.5, np.exp(-2.0)), (1e-3, 0.0)):
        new, _ = steps(keys, jnp.float32(temperature))
        rate = float(jnp.mean(jnp.any(new != 0, axis=1)))
        if abs(rate - expected) > 0.03:
            checks.fail(f"at temperature {temperature}, {rate:.1%} of proposals that lower the score by 1 were "
                        f"accepted; the Metropolis rule accepts exp(-1/T) = {expected:.1%}.")
