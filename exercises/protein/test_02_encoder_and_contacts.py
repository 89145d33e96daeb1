"""Visible tests for 02_encoder_and_contacts.py.

Run them with `uv run pytest exercises/protein/test_02_encoder_and_contacts.py`
(add `--exercise contact_map` to check a single exercise).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import nn
from course.nn.protein_lm import AMINO_ACID_TOKENS, CLS, EOS, PAD, ProteinLM
from grader import checks


def tiny_model(key):
    return ProteinLM(dim=16, num_layers=2, num_heads=2, key=key)


def padded_tokens(rng, residues, padding):
    return np.array([CLS, *rng.choice(AMINO_ACID_TOKENS, size=residues), EOS] + [PAD] * padding, np.int32)


def numpy_attention_weights(block, x, is_token):
    """The weights of `block`'s attention, computed step by step with NumPy."""
    attention = block.attention.attention
    normed = np.asarray(jax.vmap(block.attention_norm)(x))
    heads = attention.num_heads

    def project(linear):
        out = normed @ np.asarray(linear.weight).T + np.asarray(linear.bias)
        return out.reshape(len(x), heads, -1)  # (seq, heads, head_dim)

    queries, keys = project(attention.query_proj), project(attention.key_proj)
    rotate = lambda h: np.asarray(jax.vmap(block.attention.rotary, in_axes=1, out_axes=1)(jnp.asarray(h)))
    queries, keys = rotate(queries), rotate(keys)
    weights = np.zeros((heads, len(x), len(x)))
    for h in range(heads):
        logits = queries[:, h] @ keys[:, h].T / np.sqrt(queries.shape[-1])
        logits[:, ~is_token] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        weights[h] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return weights.astype(np.float32)


@pytest.mark.exercise("encoder_block")
def test_encoder_block_matches_the_library_block(submission, rng, getkey):
    model = tiny_model(getkey())
    tokens = padded_tokens(rng, 5, 3)
    x = rng.normal(size=(len(tokens), 16)).astype(np.float32)
    is_token = tokens != PAD
    block = model.blocks[0]
    out, weights = checks.jitted(lambda x, t: submission.encoder_block(block, x, t), x, is_token,
                                 call="jit(encoder_block)")
    expected = jax.jit(lambda x: block(x, nn.key_padding_mask(jnp.asarray(is_token))))(x)
    checks.assert_close(out, expected, call="encoder_block(block, x (10, 16), is_token)[0]", rtol=1e-4, atol=1e-5)
    checks.assert_close(weights, numpy_attention_weights(model.blocks[0], x, is_token),
                        call="encoder_block(block, x (10, 16), is_token)[1]", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("attention_maps")
def test_attention_maps_of_the_first_layer_and_padding(submission, rng, getkey):
    model = tiny_model(getkey())
    tokens = padded_tokens(rng, 6, 2)
    maps = checks.jitted(lambda t: submission.attention_maps(model, t), tokens, call="jit(attention_maps)")
    checks.assert_shape(maps, (2, 2, 10, 10), call="attention_maps(model with 2 layers of 2 heads, tokens (10,))")
    first = numpy_attention_weights(model.blocks[0], np.asarray(model.embed(tokens)), tokens != PAD)
    checks.assert_close(maps[0], first, call="attention_maps(...)[0] (the first layer)", rtol=1e-4, atol=1e-6)
    checks.assert_close(np.asarray(maps).sum(-1), np.ones((2, 2, 10), np.float32),
                        call="attention_maps(...).sum(-1)", rtol=1e-5, atol=1e-5)
    if np.asarray(maps)[..., tokens == PAD].max() > 1e-6:
        checks.fail("attention_maps put weight on padding keys.")
    second = numpy_attention_weights(model.blocks[1], np.asarray(model.hidden_states(tokens)[1]), tokens != PAD)
    checks.assert_close(maps[1], second, call="attention_maps(...)[1] (the second layer)", rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("contact_map")
def test_contact_map_equals_a_loop(submission, rng):
    maps = rng.random(size=(2, 3, 5, 5)).astype(np.float32)
    expected = np.zeros((5, 5))
    for layer in range(2):
        for head in range(3):
            f = maps[layer, head] + maps[layer, head].T
            for i in range(5):
                for j in range(5):
                    expected[i, j] += f[i, j] - f[i, :].sum() * f[:, j].sum() / f.sum()
    expected = (expected / 6).astype(np.float32)
    got = checks.jitted(submission.contact_map, maps, call="jit(contact_map)")
    checks.assert_close(got, expected, call="contact_map(maps (2, 3, 5, 5))", rtol=1e-4, atol=1e-5)
