"""Hidden tests for 01_arrays_and_jit.py: the student's functions against the reference."""

import contextlib
import io

import jax
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


@pytest.mark.exercise("pairwise_sq_distances")
@pytest.mark.points(2)
def test_pairwise_sq_distances_matches_reference(submission, reference, rng):
    n, m, d = (int(k) for k in rng.integers(2, 9, size=3))
    x, y = 2.0 * normals(rng, n, d), normals(rng, m, d)
    got = submission.evaluate(lambda: checks.jitted(submission.pairwise_sq_distances, x, y,
                                                    call="jit(pairwise_sq_distances)"))
    expected = jax.jit(reference.pairwise_sq_distances)(x, y)
    checks.assert_close(got, expected, call=f"pairwise_sq_distances(x ({n}, {d}), y ({m}, {d}))",
                        rtol=1e-4, atol=1e-4)


@pytest.mark.exercise("pairwise_sq_distances")
@pytest.mark.points(1)
def test_pairwise_sq_distances_has_no_loop(submission, rng):
    x, y = normals(rng, 8, 3), normals(rng, 8, 3)
    equations = submission.evaluate(lambda: len(jax.make_jaxpr(submission.pairwise_sq_distances)(x, y).jaxpr.eqns))
    if equations > 20:
        checks.fail(f"pairwise_sq_distances on 8 x 8 points builds a program of {equations} operations: "
                    "it loops over the points. Use broadcasting (x[:, None, :] - y[None, :, :]).")


@pytest.mark.exercise("stable_logsumexp")
@pytest.mark.points(2)
def test_stable_logsumexp_matches_reference(submission, reference, rng):
    x = 5.0 * normals(rng, 9) + np.float32(rng.choice([-800.0, 0.0, 800.0]))
    got = submission.evaluate(lambda: checks.jitted(submission.stable_logsumexp, x, call="jit(stable_logsumexp)"))
    checks.assert_finite(got, call="stable_logsumexp")
    expected = jax.jit(reference.stable_logsumexp)(x)
    checks.assert_close(got, expected, call="stable_logsumexp(x)", rtol=1e-5)


@pytest.mark.exercise("stable_logsumexp")
@pytest.mark.points(1)
def test_stable_logsumexp_gradient_matches_reference(submission, reference, rng):
    x = normals(rng, 6) + np.float32(300.0)
    got = submission.evaluate(lambda: jax.jit(jax.grad(submission.stable_logsumexp))(x))
    checks.assert_finite(got, call="grad(stable_logsumexp)")
    expected = jax.jit(jax.grad(reference.stable_logsumexp))(x)
    checks.assert_close(got, expected, call="grad(stable_logsumexp)(x)", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("stable_softmax")
@pytest.mark.points(2)
def test_stable_softmax_matches_reference(submission, reference, rng):
    x = 3.0 * normals(rng, 7) + np.float32(rng.choice([-1000.0, 0.0, 1000.0]))
    got = submission.evaluate(lambda: checks.jitted(submission.stable_softmax, x, call="jit(stable_softmax)"))
    checks.assert_finite(got, call="stable_softmax")
    expected = jax.jit(reference.stable_softmax)(x)
    checks.assert_close(got, expected, call="stable_softmax(x)", rtol=2e-4, atol=1e-6)


@pytest.mark.exercise("stable_softmax")
@pytest.mark.points(1)
def test_stable_softmax_jacobian_matches_reference(submission, reference, rng):
    x = normals(rng, 5)
    got = submission.evaluate(lambda: jax.jit(jax.jacrev(submission.stable_softmax))(x))
    expected = jax.jit(jax.jacrev(reference.stable_softmax))(x)
    checks.assert_close(got, expected, call="jacobian of stable_softmax", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("set_diagonal")
@pytest.mark.points(2)
def test_set_diagonal_matches_reference(submission, reference, rng):
    n = int(rng.integers(2, 7))
    matrix, values = normals(rng, n, n), normals(rng, n)
    original = matrix.copy()
    got = submission.evaluate(lambda: checks.jitted(submission.set_diagonal, matrix, values, call="jit(set_diagonal)"))
    expected = jax.jit(reference.set_diagonal)(matrix, values)
    checks.assert_close(got, expected, call=f"set_diagonal(matrix ({n}, {n}), values)")

    def matrix_after_an_eager_call():
        submission.set_diagonal(matrix, values)  # eagerly, on a NumPy array (the sandbox's copy of it)
        return matrix

    if not np.array_equal(submission.evaluate(matrix_after_an_eager_call), original):
        checks.fail("set_diagonal changed its input matrix; return a new array with .at[...].set(...).")


@pytest.mark.exercise("normalize")
@pytest.mark.points(1)
def test_normalize_matches_reference(submission, reference, rng):
    x = normals(rng, 5)

    def jitted_normalize():
        got = checks.jitted(submission.normalize, x, call="jit(normalize)")
        jax.effects_barrier()  # its printing done within this request
        return got

    got = submission.evaluate(jitted_normalize)
    expected = jax.jit(reference.normalize)(x)
    jax.effects_barrier()
    checks.assert_close(got, expected, call="normalize(x)", rtol=1e-5)


@pytest.mark.exercise("normalize")
@pytest.mark.points(2)
def test_normalize_prints_at_run_time(submission, rng):
    vectors = [np.array([5.0, 12.0], np.float32) * np.float32(k) for k in rng.integers(1, 20, size=3)]

    def printed_by_three_calls():  # what jit(normalize) prints in the sandbox, where capsys cannot see
        fn, printed = jax.jit(submission.normalize), io.StringIO()
        with contextlib.redirect_stdout(printed):
            for x in vectors:
                fn(x)
            jax.effects_barrier()
        return printed.getvalue()

    printed = submission.evaluate(printed_by_three_calls)
    wanted = [f"norm = {13.0 * x[0] / 5.0:.3f}" for x in vectors]
    missing = [line for line in wanted if line not in printed]
    if missing:
        checks.fail(f"jit(normalize) run three times should print {wanted}; {missing} did not appear in:\n"
                    f"{printed}\nHint: use jax.debug.print, which prints at every call, not print.")
