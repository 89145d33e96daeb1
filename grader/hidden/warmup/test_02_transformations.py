"""Hidden tests for 02_transformations.py: the student's functions against the reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


@pytest.mark.exercise("ema")
@pytest.mark.points(2)
def test_ema_matches_reference(submission, reference, rng):
    xs, decay = normals(rng, 30, 2, 3), np.float32(rng.uniform(0.5, 0.99))
    got = submission.evaluate(lambda: checks.jitted(submission.ema, xs, decay, call="jit(ema)"))
    expected = jax.jit(reference.ema)(xs, decay)
    checks.assert_close(got, expected, call=f"ema(xs (30, 2, 3), {decay:.3f})", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("ema")
@pytest.mark.points(1)
def test_ema_is_one_scan(submission, rng):
    xs, other_xs = normals(rng, 40, 2), normals(rng, 40, 2)

    def jaxpr_traced_once():
        jaxpr = jax.make_jaxpr(submission.ema)(xs, 0.9)
        counted = jax.jit(checks.assert_max_traces(submission.ema, n=1))
        counted(xs, np.float32(0.9))
        counted(other_xs, np.float32(0.7))
        return str(jaxpr), len(jaxpr.jaxpr.eqns)

    jaxpr, equations = submission.evaluate(jaxpr_traced_once)
    if "scan" not in jaxpr:
        checks.fail("ema does not use jax.lax.scan (no scan in its jaxpr).")
    if equations > 20:
        checks.fail("ema unrolls its loop: let jax.lax.scan run over the rows of xs.")


def mlp_loss(params, x, y):
    for weight, bias in params[:-1]:
        x = jnp.tanh(weight @ x + bias)
    weight, bias = params[-1]
    return jnp.mean((weight @ x + bias - y) ** 2)


@pytest.mark.exercise("per_example_grads")
@pytest.mark.points(2)
def test_per_example_grads_matches_reference(submission, reference, rng):
    sizes = [3, 5, 4, 2]
    layers = zip(sizes[:-1], sizes[1:], strict=True)
    params = [(0.5 * normals(rng, n_out, n_in), normals(rng, n_out)) for n_in, n_out in layers]
    xs, ys = normals(rng, 7, 3), normals(rng, 7, 2)
    got = submission.evaluate(lambda: jax.jit(submission.per_example_grads, static_argnums=0)(mlp_loss, params, xs, ys))
    expected = jax.jit(reference.per_example_grads, static_argnums=0)(mlp_loss, params, xs, ys)
    checks.assert_close(got, expected, call="per_example_grads(mlp_loss, params, xs (7, 3), ys (7, 2))",
                        rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("per_example_grads")
@pytest.mark.points(1)
def test_per_example_grads_are_not_averaged(submission, rng):
    loss = lambda w, x, y: (w @ x - y) ** 2
    w, xs, ys = normals(rng, 2), normals(rng, 4, 2), normals(rng, 4)
    got = submission.evaluate(lambda: jax.jit(submission.per_example_grads, static_argnums=0)(loss, w, xs, ys))
    expected = 2 * (xs @ w - ys)[:, None] * xs
    checks.assert_close(got, expected, call="per_example_grads of (w @ x - y)**2 for 4 examples",
                        rtol=1e-4, atol=1e-6)


def random_tree(rng):
    return {"encoder": [normals(rng, 3, 2), (normals(rng, 4), normals(rng))], "head": {"w": normals(rng, 2, 2)}}


@pytest.mark.exercise("clip_by_global_norm")
@pytest.mark.points(2)
def test_clip_by_global_norm_matches_reference(submission, reference, rng):
    tree = random_tree(rng)
    norm = float(np.sqrt(sum(np.sum(leaf**2) for leaf in jax.tree.leaves(tree))))
    for max_norm in (np.float32(0.3 * norm), np.float32(3.0 * norm)):
        got = submission.evaluate(checks.jitted, submission.clip_by_global_norm, tree, max_norm,
                                  call="jit(clip_by_global_norm)")
        expected = jax.jit(reference.clip_by_global_norm)(tree, max_norm)
        checks.assert_close(got, expected, call=f"clip_by_global_norm(tree of norm {norm:.3f}, {max_norm:.3f})",
                            rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("clip_by_global_norm")
@pytest.mark.points(1)
def test_clip_by_global_norm_of_zeros(submission):
    tree = {"a": np.zeros(3, np.float32), "b": [np.zeros((2, 2), np.float32)]}
    got = submission.evaluate(lambda: jax.jit(submission.clip_by_global_norm)(tree, np.float32(1.0)))
    checks.assert_finite(got, call="clip_by_global_norm(tree of zeros, 1.0)")
    checks.assert_close(got, tree, call="clip_by_global_norm(tree of zeros, 1.0)")
