"""Visible tests for 01_arrays_and_jit.py.

Run them with `uv run pytest exercises/warmup/test_01_arrays_and_jit.py`
(add `--exercise stable_softmax` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp
from jax.test_util import check_grads

from grader import checks


@pytest.mark.exercise("pairwise_sq_distances")
def test_distances_equal_a_python_loop(submission, rng):
    x = rng.normal(size=(4, 3)).astype(np.float32)
    y = rng.normal(size=(6, 3)).astype(np.float32)
    expected = np.array([[np.sum((a - b) ** 2) for b in y] for a in x], dtype=np.float32)
    got = checks.jitted(submission.pairwise_sq_distances, x, y, call="jit(pairwise_sq_distances)")
    checks.assert_close(got, expected, call="pairwise_sq_distances(x (4, 3), y (6, 3))", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("pairwise_sq_distances")
def test_distances_of_known_points(submission):
    x = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    y = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]], np.float32)
    expected = np.array([[0.0, 1.0, 9.0], [25.0, 20.0, 16.0]], np.float32)
    got = jax.jit(submission.pairwise_sq_distances)(x, y)
    checks.assert_close(got, expected, call="pairwise_sq_distances(x, y)", rtol=1e-5)


@pytest.mark.exercise("stable_logsumexp")
def test_logsumexp_matches_jax_scipy(submission, rng):
    x = 3.0 * rng.normal(size=(7,)).astype(np.float32)
    got = jax.jit(submission.stable_logsumexp)(x)
    checks.assert_close(got, jax.jit(logsumexp)(x), call="stable_logsumexp(x)", rtol=1e-5)


@pytest.mark.exercise("stable_logsumexp")
def test_logsumexp_is_finite_for_large_inputs(submission, rng):
    x = rng.normal(size=(5,)).astype(np.float32)
    fn = jax.jit(submission.stable_logsumexp)
    got = fn(x + np.float32(1000.0))
    checks.assert_finite(got, call="stable_logsumexp(x + 1000)")
    checks.assert_close(got, fn(x) + np.float32(1000.0), call="stable_logsumexp(x + 1000)", rtol=1e-5)


@pytest.mark.exercise("stable_logsumexp")
def test_logsumexp_gradients(submission, rng):
    x = rng.normal(size=(4,)).astype(np.float32)
    check_grads(jax.jit(submission.stable_logsumexp), (x,), order=2)
    got = jax.jit(jax.grad(submission.stable_logsumexp))(x + np.float32(500.0))
    checks.assert_close(got, jax.nn.softmax(x), call="grad(stable_logsumexp)(x + 500)", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("stable_softmax")
def test_softmax_matches_jax_nn(submission, rng):
    x = 2.0 * rng.normal(size=(6,)).astype(np.float32)
    got = jax.jit(submission.stable_softmax)(x)
    checks.assert_close(got, jax.jit(jax.nn.softmax)(x), call="stable_softmax(x)", rtol=1e-5)


@pytest.mark.exercise("stable_softmax")
def test_softmax_is_finite_and_sums_to_one_for_large_inputs(submission, rng):
    x = rng.normal(size=(6,)).astype(np.float32)
    got = jax.jit(submission.stable_softmax)(x + np.float32(1000.0))
    checks.assert_finite(got, call="stable_softmax(x + 1000)")
    checks.assert_close(got.sum(), np.float32(1.0), call="stable_softmax(x + 1000).sum()", rtol=1e-4)
    checks.assert_close(got, jax.nn.softmax(x), call="stable_softmax(x + 1000)", rtol=2e-4, atol=1e-6)


@pytest.mark.exercise("stable_softmax")
def test_softmax_gradients(submission, rng):
    x = rng.normal(size=(4,)).astype(np.float32)
    check_grads(jax.jit(submission.stable_softmax), (x,), order=2)


@pytest.mark.exercise("set_diagonal")
def test_set_diagonal_leaves_the_input_alone(submission, rng):
    matrix = rng.normal(size=(4, 4)).astype(np.float32)
    values = rng.normal(size=(4,)).astype(np.float32)
    original = matrix.copy()
    got = submission.set_diagonal(matrix, values)
    expected = original.copy()
    np.fill_diagonal(expected, values)
    checks.assert_close(got, expected, call="set_diagonal(matrix, values)")
    if not np.array_equal(matrix, original):
        checks.fail("set_diagonal changed its input matrix; return a new array with .at[...].set(...).")


@pytest.mark.exercise("set_diagonal")
def test_set_diagonal_under_jit(submission, rng):
    matrix = jax.device_put(rng.normal(size=(3, 3)).astype(np.float32))
    values = np.array([1.0, 2.0, 3.0], np.float32)
    got = checks.jitted(submission.set_diagonal, matrix, values, call="jit(set_diagonal)")
    expected = np.array(matrix)
    np.fill_diagonal(expected, values)
    checks.assert_close(got, expected, call="jit(set_diagonal)(matrix, [1, 2, 3])")
    checks.assert_close(matrix, np.asarray(matrix), call="the input matrix")


@pytest.mark.exercise("normalize")
def test_normalize_returns_a_unit_vector(submission):
    x = np.array([3.0, 4.0], np.float32)
    got = jax.jit(submission.normalize)(x)
    jax.effects_barrier()
    checks.assert_close(got, np.array([0.6, 0.8], np.float32), call="normalize([3, 4])")


@pytest.mark.exercise("normalize")
def test_normalize_prints_the_norm_at_every_call(submission, rng, capsys):
    fn = jax.jit(submission.normalize)
    scales = rng.integers(1, 10, size=2)
    for scale in scales:  # same shape: traced once, run twice
        fn(np.array([3.0, 4.0], np.float32) * np.float32(scale))
    jax.effects_barrier()
    printed = capsys.readouterr().out
    for scale in scales:
        line = f"norm = {5 * scale:.3f}"
        if line not in printed:
            checks.fail(f"jit(normalize) called on a vector of norm {5 * scale} should print {line!r} "
                        f"when it runs, but printed:\n{printed}\n"
                        "Hint: print runs only while tracing; jax.debug.print runs at every call.")
