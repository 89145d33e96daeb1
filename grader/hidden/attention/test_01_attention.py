"""Hidden tests for 01_attention.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


def random_mask(rng, queries, keys):
    mask = rng.random((queries, keys)) < 0.6
    mask[np.arange(queries), rng.integers(0, keys, size=queries)] = True
    return mask


def random_sizes(rng):
    return tuple(int(n) for n in rng.integers(2, 9, size=3))


@pytest.mark.exercise("attention_weights")
@pytest.mark.points(2)
def test_attention_weights_match_reference(submission, reference, rng):
    queries, keys, d = random_sizes(rng)
    query, key = 2.0 * normals(rng, queries, d), normals(rng, keys, d)
    mask = random_mask(rng, queries, keys)
    for m, label in ((None, "None"), (mask, "a random mask")):
        got = submission.evaluate(checks.jitted, submission.attention_weights, query, key, m,
                                  call="jit(attention_weights)")
        expected = jax.jit(reference.attention_weights)(query, key, m)
        checks.assert_close(got, expected, call=f"attention_weights(query ({queries}, {d}), key ({keys}, {d}), "
                            f"mask={label})", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("attention_weights")
@pytest.mark.points(1)
def test_attention_weights_mask_with_the_dtype_minimum(submission, reference, rng):
    # Every logit is about -1e13: only the dtype's most negative number lies below them all.
    query = np.full((3, 2), 3e6, np.float32)
    key = -1e6 * (1.0 + np.abs(normals(rng, 5, 2)))
    mask = random_mask(rng, 3, 5)
    got = submission.evaluate(lambda: jax.jit(submission.attention_weights)(query, key, mask))
    checks.assert_finite(got, call="attention_weights with logits near -1e13")
    checks.assert_close(got, jax.jit(reference.attention_weights)(query, key, mask),
                        call="attention_weights with logits near -1e13 (mask with jnp.finfo(dtype).min)",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("attention_weights")
@pytest.mark.points(1)
def test_attention_weights_gradient_matches_reference(submission, reference, rng):
    query, key = normals(rng, 4, 3), normals(rng, 6, 3)
    mask = random_mask(rng, 4, 6)
    weights_of_interest = normals(rng, 4, 6)

    def loss(namespace):
        return jax.jit(jax.grad(lambda q, k: (namespace.attention_weights(q, k, mask) * weights_of_interest).sum(),
                                argnums=(0, 1)))

    got = submission.evaluate(lambda: loss(submission)(query, key))
    checks.assert_finite(got, call="grad of attention_weights")
    checks.assert_close(got, loss(reference)(query, key), call="grad of attention_weights wrt (query, key)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("dot_product_attention")
@pytest.mark.points(2)
def test_dot_product_attention_matches_reference(submission, reference, rng):
    queries, keys, d = random_sizes(rng)
    dv = int(rng.integers(1, 6))
    query, key, value = normals(rng, queries, d), normals(rng, keys, d), normals(rng, keys, dv)
    mask = random_mask(rng, queries, keys)
    got = submission.evaluate(lambda: checks.jitted(submission.dot_product_attention, query, key, value, mask,
                                                    call="jit(dot_product_attention)"))
    expected = jax.jit(reference.dot_product_attention)(query, key, value, mask)
    checks.assert_close(got, expected, call=f"dot_product_attention(query ({queries}, {d}), key ({keys}, {d}), "
                        f"value ({keys}, {dv}), mask)", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("dot_product_attention")
@pytest.mark.points(1)
def test_dot_product_attention_batches_and_differentiates(submission, reference, rng):
    query, key, value = normals(rng, 3, 4, 5), normals(rng, 3, 6, 5), normals(rng, 3, 6, 2)

    def batched(namespace):
        return jax.jit(jax.vmap(namespace.dot_product_attention))

    def batched_grad(namespace):
        return jax.jit(jax.grad(lambda q, k, v: (jax.vmap(namespace.dot_product_attention)(q, k, v) ** 2).sum(),
                                argnums=(0, 1, 2)))

    checks.assert_close(submission.evaluate(lambda: batched(submission)(query, key, value)),
                        batched(reference)(query, key, value),
                        call="vmap(dot_product_attention) over a batch of 3", rtol=1e-5, atol=1e-5)
    checks.assert_close(submission.evaluate(lambda: batched_grad(submission)(query, key, value)),
                        batched_grad(reference)(query, key, value),
                        call="grad of vmap(dot_product_attention) wrt (query, key, value)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("causal_mask")
@pytest.mark.points(1)
def test_causal_mask_matches_reference(submission, reference, rng):
    length = int(rng.integers(2, 12))
    got = np.asarray(submission.causal_mask(length))
    if got.dtype != np.bool_:
        checks.fail(f"causal_mask({length}) has dtype {got.dtype}; masks are booleans (dtype=bool).")
    checks.assert_close(got, np.asarray(reference.causal_mask(length)), call=f"causal_mask({length})")


@pytest.mark.exercise("causal_mask")
@pytest.mark.points(1)
def test_causal_mask_works_under_jit_with_a_static_length(submission, rng):
    query, key, value = (normals(rng, 7, 1, 3) for _ in range(3))
    mask = submission.evaluate(lambda: jax.jit(submission.causal_mask, static_argnums=0)(7))
    checks.assert_close(jax.nn.dot_product_attention(query, key, value, mask=mask[None]),
                        jax.nn.dot_product_attention(query, key, value, is_causal=True),
                        call="attention with jit(causal_mask)(7) vs is_causal=True", rtol=1e-5, atol=1e-6)
