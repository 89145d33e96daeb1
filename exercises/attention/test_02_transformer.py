"""Visible tests for 02_transformer.py.

Run them with `uv run pytest exercises/attention/test_02_transformer.py`
(add `--exercise MultiheadAttention` to check a single exercise).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from course import nn
from grader import checks

LAYERS = lambda m: (m.query_proj, m.key_proj, m.value_proj, m.output_proj)  # noqa: E731


def apply(model, x, mask=None):
    return model(x, mask)


def equinox_rotary(x):
    return eqx.nn.RotaryPositionalEmbedding(x.shape[-1])(x)


def yours_with_equinox_weights(submission, dim, num_heads, key, **flags):
    """Your MultiheadAttention holding the weights of an eqx.nn.MultiheadAttention."""
    theirs = eqx.nn.MultiheadAttention(num_heads, dim, key=key)
    yours = submission.MultiheadAttention(dim, num_heads, key=key, **flags)
    return eqx.tree_at(LAYERS, yours, LAYERS(theirs)), theirs


@pytest.mark.exercise("rotary_embedding")
def test_rotary_matches_equinox(submission, rng):
    x = rng.normal(size=(6, 8)).astype(np.float32)
    got = checks.jitted(submission.rotary_embedding, x, call="jit(rotary_embedding)")
    checks.assert_close(got, jax.jit(equinox_rotary)(x), call="rotary_embedding(x (6, 8))", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("rotary_embedding")
def test_rotary_positions_argument(submission, rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    padded = np.concatenate([np.zeros((5, 4), np.float32), x])  # x sits at positions 5, 6, 7
    got = jax.jit(submission.rotary_embedding)(x, np.arange(5, 8))
    checks.assert_close(got, jax.jit(equinox_rotary)(padded)[5:], call="rotary_embedding(x, positions=[5, 6, 7])",
                        rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("rotary_embedding")
def test_rotary_products_depend_on_the_offset_only(submission, rng):
    query_and_key = rng.normal(size=(2, 16)).astype(np.float32)
    rotate = jax.jit(submission.rotary_embedding)

    def product(m, n):
        rotated = rotate(query_and_key, np.array([m, n]))
        return rotated[0] @ rotated[1]

    checks.assert_close(product(9, 4), product(5, 0), call="q.k at positions (9, 4) vs (5, 0)", rtol=1e-4, atol=1e-4)
    checks.assert_close(np.linalg.norm(rotate(query_and_key, np.array([7, 3])), axis=1),
                        np.linalg.norm(query_and_key, axis=1), call="the norms of rotated vectors", rtol=1e-5)


@pytest.mark.exercise("MultiheadAttention")
def test_multihead_attention_matches_equinox(submission, rng, getkey):
    yours, theirs = yours_with_equinox_weights(submission, 12, 3, getkey())
    x = rng.normal(size=(5, 12)).astype(np.float32)
    mask = rng.random((5, 5)) < 0.7
    mask[np.arange(5), np.arange(5)] = True
    for m, label in ((None, "None"), (mask, "a random mask")):
        got = checks.jitted(apply, yours, x, m, call="jit(MultiheadAttention(12, 3))")
        expected = jax.jit(lambda x, m: theirs(x, x, x, mask=m))(x, m)
        checks.assert_close(got, expected, call=f"MultiheadAttention(12, 3)(x (5, 12), mask={label})",
                            rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("MultiheadAttention")
def test_causal_option_matches_is_causal(submission, rng, getkey):
    yours, _ = yours_with_equinox_weights(submission, 8, 2, getkey(), causal=True)
    x = rng.normal(size=(6, 8)).astype(np.float32)

    def with_jax_nn(x):
        heads = lambda layer: jax.vmap(layer)(x).reshape(6, 2, 4)  # noqa: E731
        out = jax.nn.dot_product_attention(heads(yours.query_proj), heads(yours.key_proj), heads(yours.value_proj),
                                           is_causal=True)
        return jax.vmap(yours.output_proj)(out.reshape(6, 8))

    checks.assert_close(jax.jit(apply)(yours, x), jax.jit(with_jax_nn)(x),
                        call="MultiheadAttention(8, 2, causal=True)(x) vs is_causal=True", rtol=1e-5, atol=1e-5)
    weights = jax.jit(lambda model, x: model.attention_weights(x))(yours, x)
    checks.assert_shape(weights, (2, 6, 6), call="attention_weights of 2 heads on 6 positions")
    checks.assert_close(np.triu(np.asarray(weights), k=1), np.zeros((2, 6, 6), np.float32),
                        call="causal attention_weights above the diagonal")
    checks.assert_close(np.sum(weights, axis=-1), np.ones((2, 6), np.float32), call="rows of attention_weights summed",
                        rtol=1e-5)


@pytest.mark.exercise("MultiheadAttention")
def test_rotary_option_matches_equinox(submission, rng, getkey):
    yours, theirs = yours_with_equinox_weights(submission, 16, 2, getkey(), rotary=True)
    x = rng.normal(size=(7, 16)).astype(np.float32)
    rope = eqx.nn.RotaryPositionalEmbedding(8)

    def process_heads(q, k, v):
        rotate = jax.vmap(rope, in_axes=1, out_axes=1)
        return rotate(q), rotate(k), v

    expected = jax.jit(lambda x: theirs(x, x, x, process_heads=process_heads))(x)
    checks.assert_close(jax.jit(apply)(yours, x), expected, call="MultiheadAttention(16, 2, rotary=True)(x (7, 16))",
                        rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("sequence_cross_entropy")
def test_cross_entropy_matches_optax(submission, rng):
    logits = 3.0 * rng.normal(size=(6, 5)).astype(np.float32)
    targets = rng.integers(0, 5, size=6)
    got = checks.jitted(submission.sequence_cross_entropy, logits, targets, call="jit(sequence_cross_entropy)")
    expected = np.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))
    checks.assert_close(got, expected, call="sequence_cross_entropy(logits (6, 5), targets (6,))", rtol=1e-5)


@pytest.mark.exercise("sequence_cross_entropy")
def test_cross_entropy_is_stable_for_large_logits(submission, rng):
    logits = 1000.0 * rng.normal(size=(4, 3)).astype(np.float32)
    targets = rng.integers(0, 3, size=4)
    got = jax.jit(submission.sequence_cross_entropy)(logits, targets)
    checks.assert_finite(got, call="sequence_cross_entropy(1000 * logits, targets)")
    expected = np.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))
    checks.assert_close(got, expected, call="sequence_cross_entropy(1000 * logits, targets)", rtol=1e-5)


class TwoFixedHeads(eqx.Module):
    """A parameter-free attention whose two heads look for similar and dissimilar positions."""

    def attention_weights(self, x, mask=None):
        similarity = x @ x.T
        return jnp.stack([jax.nn.softmax(similarity), jax.nn.softmax(-similarity)])

    def __call__(self, x, mask=None):
        return jnp.mean(self.attention_weights(x) @ x, axis=0)


@pytest.mark.exercise("attention_maps")
def test_attention_maps_stack_every_layer(submission, getkey):
    model = nn.Transformer(7, 8, 3, make_attention=lambda key: TwoFixedHeads(), key=getkey())
    tokens = np.array([0, 3, 3, 6, 1])
    got = jax.jit(submission.attention_maps)(model, tokens)
    inputs = model.attention_inputs(tokens)
    expected = jnp.stack([block.attention.attention_weights(x) for block, x in zip(model.blocks, inputs, strict=True)])
    checks.assert_close(got, expected, call="attention_maps(model with 3 layers of 2 heads, tokens (5,))",
                        rtol=1e-5, atol=1e-6)
