"""Hidden tests for 02_encoder_and_contacts.py: the student's functions against the reference."""

import jax
import numpy as np
import pytest

from course.nn.protein_lm import AMINO_ACID_TOKENS, CLS, EOS, PAD, ProteinLM
from grader import checks
from grader.inputs import normals


def random_model(rng, key):
    num_heads, head_dim = int(rng.integers(1, 4)), 2 * int(rng.integers(1, 5))
    return ProteinLM(dim=num_heads * head_dim, num_layers=int(rng.integers(1, 4)), num_heads=num_heads, key=key)


def random_tokens(rng):
    residues, padding = int(rng.integers(1, 12)), int(rng.integers(0, 5))
    return np.array([CLS, *rng.choice(AMINO_ACID_TOKENS, size=residues), EOS] + [PAD] * padding, np.int32)


@pytest.mark.exercise("encoder_block")
@pytest.mark.points(3)
def test_encoder_block_matches_reference(submission, reference, rng, getkey):
    model = random_model(rng, getkey())
    tokens = random_tokens(rng)
    dim = model.token_embedding.weight.shape[1]
    x, is_token = normals(rng, len(tokens), dim), tokens != PAD
    block = model.blocks[-1]
    got = submission.evaluate(lambda: checks.jitted(lambda x, t: submission.encoder_block(block, x, t), x, is_token,
                                                    call="jit(encoder_block)"))
    expected = jax.jit(lambda x, t: reference.encoder_block(block, x, t))(x, is_token)
    checks.assert_close(got, expected, call=f"encoder_block(block of {model.num_heads} heads, x {x.shape}, is_token)",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("encoder_block")
@pytest.mark.points(1)
def test_encoder_block_gradient_matches_reference(submission, reference, rng, getkey):
    model = random_model(rng, getkey())
    tokens = random_tokens(rng)
    x = normals(rng, len(tokens), model.token_embedding.weight.shape[1])
    cotangent = normals(rng, *x.shape)

    def grad(namespace):
        loss = lambda x: (namespace.encoder_block(model.blocks[0], x, tokens != PAD)[0] * cotangent).sum()
        return jax.jit(jax.grad(loss))(x)

    checks.assert_close(submission.evaluate(grad, submission), grad(reference), call="grad of encoder_block's output",
                        rtol=1e-3, atol=1e-4)


@pytest.mark.exercise("attention_maps")
@pytest.mark.points(2)
def test_attention_maps_match_reference(submission, reference, rng, getkey):
    model = random_model(rng, getkey())
    tokens = random_tokens(rng)
    got = submission.evaluate(lambda: checks.jitted(lambda t: submission.attention_maps(model, t), tokens,
                                                    call="jit(attention_maps)"))
    checks.assert_close(got, jax.jit(lambda t: reference.attention_maps(model, t))(tokens),
                        call=f"attention_maps(model of {len(model.blocks)} layers, tokens ({len(tokens)},))",
                        rtol=1e-4, atol=1e-5)


@pytest.mark.exercise("contact_map")
@pytest.mark.points(2)
def test_contact_map_matches_reference(submission, reference, rng):
    layers, heads, n = (int(v) for v in rng.integers(1, 5, size=3))
    maps = rng.dirichlet(np.ones(n + 2), size=(layers, heads, n + 2))[..., : n + 2].astype(np.float32)
    got = submission.evaluate(lambda: checks.jitted(submission.contact_map, maps, call="jit(contact_map)"))
    checks.assert_close(got, jax.jit(reference.contact_map)(maps), call=f"contact_map(maps {maps.shape})",
                        rtol=1e-4, atol=1e-5)
