"""Visible tests for 02_transformations.py.

Run them with `uv run pytest exercises/warmup/test_02_transformations.py`
(add `--exercise ema` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from grader import checks


@pytest.mark.exercise("ema")
def test_ema_equals_a_python_loop(submission, rng):
    xs = rng.normal(size=(12, 3)).astype(np.float32)
    decay = np.float32(0.8)
    average, expected = np.zeros(3, np.float32), []
    for x in xs:
        average = decay * average + (1 - decay) * x
        expected.append(average)
    got = checks.jitted(submission.ema, xs, decay, call="jit(ema)")
    checks.assert_close(got, np.stack(expected), call="ema(xs (12, 3), 0.8)", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("ema")
def test_ema_is_one_scan_traced_once(submission, rng):
    xs = rng.normal(size=(50,)).astype(np.float32)
    jaxpr = str(jax.make_jaxpr(submission.ema)(xs, 0.9))
    if "scan" not in jaxpr:
        checks.fail("ema does not use jax.lax.scan (no scan in its jaxpr).")
    counted = jax.jit(checks.assert_max_traces(submission.ema, n=1))
    counted(xs, np.float32(0.9))
    counted(2 * xs, np.float32(0.5))  # new values, same shapes: no new trace


@pytest.mark.exercise("per_example_grads")
def test_per_example_grads_equal_a_loop_of_grads(submission, rng):
    def loss(params, x, y):
        return jnp.sum((jnp.tanh(params["w"] @ x) + params["b"] - y) ** 2)

    params = {"w": rng.normal(size=(2, 3)).astype(np.float32), "b": rng.normal(size=(2,)).astype(np.float32)}
    xs, ys = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)
    one_grad = jax.jit(jax.grad(loss))
    loop = [one_grad(params, x, y) for x, y in zip(xs, ys, strict=True)]
    expected = jax.tree.map(lambda *g: np.stack(g), *loop)
    got = jax.jit(submission.per_example_grads, static_argnums=0)(loss, params, xs, ys)
    checks.assert_close(got, expected, call="per_example_grads(loss, params, xs (5, 3), ys (5, 2))",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("clip_by_global_norm")
@pytest.mark.parametrize("max_norm", [0.5, 100.0], ids=["clipped", "unchanged"])
def test_clip_matches_optax(submission, rng, max_norm):
    tree = {"a": [rng.normal(size=(3,)).astype(np.float32), (rng.normal(size=(2, 2)).astype(np.float32),)],
            "b": rng.normal(size=()).astype(np.float32)}
    got = checks.jitted(submission.clip_by_global_norm, tree, np.float32(max_norm), call="jit(clip_by_global_norm)")
    expected = optax.clip_by_global_norm(max_norm).update(tree, optax.EmptyState())[0]
    checks.assert_close(got, expected, call=f"clip_by_global_norm(tree, {max_norm})", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("clip_by_global_norm")
def test_clipped_tree_has_norm_max_norm(submission):
    tree = [np.array([3.0, 0.0], np.float32), {"x": np.array([[4.0]], np.float32)}]
    got = jax.jit(submission.clip_by_global_norm)(tree, np.float32(2.0))
    expected = [np.array([1.2, 0.0], np.float32), {"x": np.array([[1.6]], np.float32)}]
    checks.assert_close(got, expected, call="clip_by_global_norm(tree of norm 5, 2.0)", rtol=1e-5)
