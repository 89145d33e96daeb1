"""Hidden tests for 02_transformer.py: the student's functions and module against the reference."""

import equinox as eqx
import jax
import numpy as np
import pytest

from course import nn
from grader import checks
from grader.inputs import normals

LAYERS = lambda m: (m.query_proj, m.key_proj, m.value_proj, m.output_proj)  # noqa: E731


def apply(model, x, mask=None):
    return model(x, mask)


def weights_of(model, x, mask=None):
    return model.attention_weights(x, mask)


def both_layers(submission, reference, dim, num_heads, key, **flags):
    """The reference's MultiheadAttention, and `yours()`, which makes the student's holding the same weights
    (call it inside `submission.evaluate`: the student's module lives in their sandboxed process)."""
    theirs = reference.MultiheadAttention(dim, num_heads, key=key, **flags)
    weights = LAYERS(theirs)

    def yours():
        return eqx.tree_at(LAYERS, submission.MultiheadAttention(dim, num_heads, key=key, **flags), weights)

    return yours, theirs


def random_mask(rng, length):
    mask = rng.random((length, length)) < 0.6
    mask[np.arange(length), np.arange(length)] = True
    return mask


@pytest.mark.exercise("rotary_embedding")
@pytest.mark.points(2)
def test_rotary_embedding_matches_reference(submission, reference, rng):
    length, half = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    x = normals(rng, length, 2 * half)
    positions = rng.integers(0, 50, size=length).astype(np.int32)
    theta = float(rng.choice([100.0, 10_000.0]))
    got = submission.evaluate(lambda: checks.jitted(submission.rotary_embedding, x, positions, theta,
                                                    call="jit(rotary_embedding)"))
    expected = jax.jit(reference.rotary_embedding)(x, positions, theta)
    checks.assert_close(got, expected, call=f"rotary_embedding(x ({length}, {2 * half}), positions, theta={theta:g})",
                        rtol=1e-4, atol=1e-4)
    checks.assert_close(submission.evaluate(lambda: jax.jit(submission.rotary_embedding)(x)),
                        jax.jit(reference.rotary_embedding)(x),
                        call=f"rotary_embedding(x ({length}, {2 * half})) with the default positions",
                        rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("rotary_embedding")
@pytest.mark.points(1)
def test_rotary_embedding_gradient_matches_reference(submission, reference, rng):
    x, cotangent = normals(rng, 5, 6), normals(rng, 5, 6)

    def grad(namespace):
        return jax.jit(jax.grad(lambda x: (namespace.rotary_embedding(x) * cotangent).sum()))

    checks.assert_close(submission.evaluate(lambda: grad(submission)(x)), grad(reference)(x),
                        call="grad of rotary_embedding", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("MultiheadAttention")
@pytest.mark.points(3)
@pytest.mark.parametrize("rotary, causal", [(False, False), (True, False), (False, True), (True, True)])
def test_multihead_attention_matches_reference(submission, reference, rng, getkey, rotary, causal):
    num_heads, head_dim, length = int(rng.integers(1, 4)), 2 * int(rng.integers(1, 4)), int(rng.integers(2, 8))
    dim = num_heads * head_dim
    yours, theirs = both_layers(submission, reference, dim, num_heads, getkey(), rotary=rotary, causal=causal)
    x, mask = normals(rng, length, dim), random_mask(rng, length)
    call = f"MultiheadAttention({dim}, {num_heads}, rotary={rotary}, causal={causal})"
    got = submission.evaluate(lambda: checks.jitted(weights_of, yours(), x, mask,
                                                    call=f"jit({call}.attention_weights)"))
    checks.assert_close(got, jax.jit(weights_of)(theirs, x, mask),
                        call=f"{call}.attention_weights(x ({length}, {dim}), mask)", rtol=1e-5, atol=1e-5)
    got = submission.evaluate(lambda: checks.jitted(apply, yours(), x, mask, call=f"jit({call})"))
    checks.assert_close(got, jax.jit(apply)(theirs, x, mask), call=f"{call}(x ({length}, {dim}), mask)",
                        rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("MultiheadAttention")
@pytest.mark.points(1)
def test_multihead_attention_parameter_gradients_match_reference(submission, reference, rng, getkey):
    yours, theirs = both_layers(submission, reference, 8, 2, getkey(), rotary=True, causal=True)
    x, cotangent = normals(rng, 5, 8), normals(rng, 5, 8)

    def parameter_grads(layer):
        return eqx.filter_grad(lambda layer: (layer(x) * cotangent).sum())(layer)

    checks.assert_close(submission.evaluate(lambda: LAYERS(eqx.filter_jit(parameter_grads)(yours()))),
                        LAYERS(eqx.filter_jit(parameter_grads)(theirs)),
                        call="the gradients of MultiheadAttention(8, 2, rotary=True, causal=True) wrt its weights",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("MultiheadAttention")
@pytest.mark.points(1)
def test_multihead_attention_batches_with_vmap(submission, reference, rng, getkey):
    yours, theirs = both_layers(submission, reference, 6, 3, getkey())
    x = normals(rng, 4, 5, 6)
    over_batch = lambda layer, x: jax.vmap(layer)(x)  # noqa: E731
    checks.assert_close(submission.evaluate(lambda: jax.jit(over_batch)(yours(), x)), jax.jit(over_batch)(theirs, x),
                        call="vmap(MultiheadAttention(6, 3)) over 4 sequences", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("sequence_cross_entropy")
@pytest.mark.points(2)
def test_sequence_cross_entropy_matches_reference(submission, reference, rng):
    length, vocab = int(rng.integers(2, 10)), int(rng.integers(2, 12))
    logits = float(rng.choice([1.0, 50.0, 2000.0])) * normals(rng, length, vocab)
    targets = rng.integers(0, vocab, size=length).astype(np.int32)
    got = submission.evaluate(lambda: checks.jitted(submission.sequence_cross_entropy, logits, targets,
                                                    call="jit(sequence_cross_entropy)"))
    checks.assert_finite(got, call="sequence_cross_entropy")
    checks.assert_close(got, jax.jit(reference.sequence_cross_entropy)(logits, targets),
                        call=f"sequence_cross_entropy(logits ({length}, {vocab}), targets)", rtol=1e-5, atol=1e-5)


@pytest.mark.exercise("sequence_cross_entropy")
@pytest.mark.points(1)
def test_sequence_cross_entropy_gradient_matches_reference(submission, reference, rng):
    logits, targets = normals(rng, 6, 4), rng.integers(0, 4, size=6).astype(np.int32)
    grad = lambda ns: jax.jit(jax.grad(ns.sequence_cross_entropy))(logits, targets)  # noqa: E731
    checks.assert_close(submission.evaluate(lambda: grad(submission)), grad(reference),
                        call="grad of sequence_cross_entropy wrt the logits",
                        rtol=1e-5, atol=1e-6)


@pytest.mark.exercise("attention_maps")
@pytest.mark.points(2)
def test_attention_maps_match_reference(submission, reference, rng, getkey):
    num_layers, num_heads, length = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(3, 8))
    dim = 4 * num_heads
    model = nn.Transformer(9, dim, num_layers, max_length=8,
                           make_attention=lambda key: reference.MultiheadAttention(dim, num_heads, key=key),
                           key=getkey())
    tokens = rng.integers(0, 9, size=length).astype(np.int32)
    got = submission.evaluate(lambda: checks.jitted(submission.attention_maps, model, tokens,
                                                    call="jit(attention_maps)"))
    checks.assert_close(got, jax.jit(reference.attention_maps)(model, tokens),
                        call=f"attention_maps(model of {num_layers} layers and {num_heads} heads, tokens ({length},))",
                        rtol=1e-5, atol=1e-5)
