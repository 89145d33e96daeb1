"""Visible tests for 01_attention.py.

Run them with `uv run pytest exercises/attention/test_01_attention.py`
(add `--exercise attention_weights` to check a single exercise).
"""

import jax
import numpy as np
import pytest

from grader import checks


def numpy_attention_weights(query, key, mask=None):
    """The formula in float64 NumPy, masked keys removed exactly."""
    logits = query.astype(np.float64) @ key.T.astype(np.float64) / np.sqrt(query.shape[-1])
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    logits -= logits.max(axis=-1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def random_mask(rng, queries, keys):
    """A random mask in which every query may see at least one key."""
    mask = rng.random((queries, keys)) < 0.5
    mask[np.arange(queries), rng.integers(0, keys, size=queries)] = True
    return mask


def with_head_axis(x):
    return x[:, None, :]  # (seq, d) -> (seq, heads=1, d), the layout of jax.nn.dot_product_attention


@pytest.mark.exercise("attention_weights")
def test_weights_match_the_formula(submission, rng):
    query, key = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    got = checks.jitted(submission.attention_weights, query, key, call="jit(attention_weights)")
    checks.assert_close(got, numpy_attention_weights(query, key), call="attention_weights(query (3, 4), key (5, 4))",
                        rtol=1e-5, atol=1e-6)
    checks.assert_close(np.sum(got, axis=-1), np.ones(3, np.float32), call="the rows of attention_weights(...) summed", rtol=1e-5)


@pytest.mark.exercise("attention_weights")
def test_masked_keys_get_zero_weight(submission, rng):
    query, key = rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(7, 6)).astype(np.float32)
    mask = random_mask(rng, 4, 7)
    got = np.asarray(jax.jit(submission.attention_weights)(query, key, mask))
    checks.assert_close(got * ~mask, np.zeros_like(got), call="attention_weights(...) at the masked keys")
    checks.assert_close(got, numpy_attention_weights(query, key, mask), call="attention_weights(query, key, mask)",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("attention_weights")
def test_masking_beats_any_logit(submission, rng):
    # Logits near -1e12: a "large negative" constant such as -1e9 would be the LARGEST logit.
    query = np.full((2, 2), 1e6, np.float32)
    key = -np.abs(rng.normal(size=(4, 2))).astype(np.float32) * 1e6 - 1e6
    mask = np.array([[True, False, True, False], [False, True, False, True]])
    got = jax.jit(submission.attention_weights)(query, key, mask)
    checks.assert_finite(got, call="attention_weights with logits of -1e12")
    checks.assert_close(got, numpy_attention_weights(query, key, mask), call="attention_weights with logits of -1e12",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("attention_weights")
def test_weights_are_stable_for_large_logits(submission, rng):
    query, key = 100.0 * rng.normal(size=(3, 4)).astype(np.float32), 100.0 * rng.normal(size=(6, 4)).astype(np.float32)
    got = jax.jit(submission.attention_weights)(query, key)
    checks.assert_finite(got, call="attention_weights(100 * query, 100 * key)")
    checks.assert_close(got, numpy_attention_weights(query, key), call="attention_weights(100 * query, 100 * key)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("dot_product_attention")
def test_attention_matches_jax_nn(submission, rng):
    query, key, value = (rng.normal(size=(n, 8)).astype(np.float32) for n in (5, 6, 6))
    mask = random_mask(rng, 5, 6)
    for m in (None, mask):
        got = checks.jitted(submission.dot_product_attention, query, key, value, m, call="jit(dot_product_attention)")
        expected = jax.nn.dot_product_attention(with_head_axis(query), with_head_axis(key), with_head_axis(value),
                                                mask=None if m is None else m[None])[:, 0]
        checks.assert_close(got, expected, call=f"dot_product_attention(query, key, value, mask={'None' if m is None else 'mask'})",
                            rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("dot_product_attention")
def test_attention_is_permutation_equivariant(submission, rng):
    query, key, value = (rng.normal(size=(n, 4)).astype(np.float32) for n in (5, 7, 7))
    attention = jax.jit(submission.dot_product_attention)
    out = np.asarray(attention(query, key, value))
    keys_shuffled = rng.permutation(7)
    checks.assert_close(attention(query, key[keys_shuffled], value[keys_shuffled]), out,
                        call="dot_product_attention with keys and values shuffled together", rtol=1e-5, atol=1e-6)
    queries_shuffled = rng.permutation(5)
    checks.assert_close(attention(query[queries_shuffled], key, value), out[queries_shuffled],
                        call="dot_product_attention with the queries shuffled", rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("dot_product_attention")
def test_attention_works_under_vmap(submission, rng):
    query, key, value = (rng.normal(size=(3, n, 4)).astype(np.float32) for n in (2, 5, 5))
    got = jax.jit(jax.vmap(submission.dot_product_attention))(query, key, value)
    expected = jax.nn.dot_product_attention(query[:, :, None], key[:, :, None], value[:, :, None])[:, :, 0]
    checks.assert_close(got, expected, call="vmap(dot_product_attention) over a batch of 3", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("causal_mask")
def test_causal_mask_is_lower_triangular(submission):
    for length in (1, 4):
        got = np.asarray(submission.causal_mask(length))
        if got.dtype != np.bool_:
            checks.fail(f"causal_mask({length}) has dtype {got.dtype}; masks are booleans (dtype=bool).")
        checks.assert_close(got, np.tril(np.ones((length, length), bool)), call=f"causal_mask({length})")


@pytest.mark.exercise("causal_mask")
def test_causal_mask_equals_is_causal(submission, rng):
    query, key, value = (rng.normal(size=(6, 1, 4)).astype(np.float32) for _ in range(3))
    got = jax.nn.dot_product_attention(query, key, value, mask=submission.causal_mask(6)[None])
    expected = jax.nn.dot_product_attention(query, key, value, is_causal=True)
    checks.assert_close(got, expected, call="jax.nn.dot_product_attention(..., mask=causal_mask(6))", rtol=1e-5, atol=1e-6)
