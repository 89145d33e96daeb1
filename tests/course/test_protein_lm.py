"""The protein language model, its shipped weights, the protein data and the training recipe."""

import shutil

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.data import proteins
from course.nn.protein_lm import (
    ALPHABET,
    AMINO_ACID_TOKENS,
    AMINO_ACIDS,
    CLS,
    EOS,
    MASK,
    PAD,
    UNK,
    ProteinLM,
    detokenize,
    tokenize,
)
from course.pretrained import protein_lm as pretrained
from pretraining.protein_lm import MASKING, batch_loss, crops, frequency_baseline, tiles

# ESM-2's vocabulary (fair-esm's Alphabet "ESM-1b" standard tokens), written out independently.
ESM2_TOKENS = ("<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - <null_1> <mask>").split()


@pytest.fixture
def tiny(getkey):
    return ProteinLM(dim=16, num_layers=2, num_heads=2, key=getkey())


def test_alphabet_is_esm2s():
    assert ALPHABET == tuple(ESM2_TOKENS)
    assert (CLS, PAD, EOS, UNK, MASK) == (0, 1, 2, 3, 32)
    assert [ALPHABET[t] for t in AMINO_ACID_TOKENS] == list(AMINO_ACIDS)
    assert sorted(AMINO_ACIDS) == sorted("ACDEFGHIKLMNPQRSTVWY")


def test_tokenize_round_trip_and_padding():
    tokens = tokenize("mkV*", length=8)
    assert tokens.tolist() == [CLS, ALPHABET.index("M"), ALPHABET.index("K"), ALPHABET.index("V"), UNK, EOS, PAD, PAD]
    assert detokenize(tokenize("MKVLA")) == "MKVLA"
    with pytest.raises(ValueError, match="more than length"):
        tokenize("MKVLA", length=4)


def test_padding_changes_nothing_at_the_real_positions(tiny):
    tokens = tokenize("MKVLAG")
    padded = tokenize("MKVLAG", length=12)
    logits, padded_logits = tiny(tokens), tiny(padded)
    assert logits.shape == (8, len(ALPHABET))
    np.testing.assert_allclose(padded_logits[:8], logits, rtol=1e-5, atol=1e-5)


def test_logits_use_the_shared_embedding(tiny):
    x = tiny.representations(tokenize("MKV"))
    head = tiny.lm_head
    expected = jax.vmap(lambda r: tiny.token_embedding.weight @ head.norm(jax.nn.gelu(head.dense(r), approximate=False))
                        + head.bias)(x)
    np.testing.assert_allclose(tiny(tokenize("MKV")), expected, rtol=1e-5, atol=1e-5)


def test_token_dropout_rescales_like_esm2(getkey):
    model = ProteinLM(dim=8, num_layers=1, num_heads=2, token_dropout=True, key=getkey())
    tokens = jnp.asarray([CLS, 5, MASK, 7, 8, EOS, PAD])  # 1 mask among 6 tokens
    x = model.embed(tokens)
    plain = jax.vmap(model.token_embedding)(tokens)
    np.testing.assert_allclose(x[2], 0.0)
    np.testing.assert_allclose(x[6], 0.0)
    np.testing.assert_allclose(x[1], plain[1] * (1 - 0.12) / (1 - 1 / 6), rtol=1e-6)


def test_from_esm2quinox_reproduces_esm2quinox(getkey):
    esm2quinox = pytest.importorskip("esm2quinox")  # optional: `uv run --with esm2quinox pytest ...`
    for token_dropout in (False, True):
        theirs = esm2quinox.ESM2(num_layers=2, embed_size=16, num_heads=2, token_dropout=token_dropout, key=getkey())
        # esm2quinox starts the head's biases at zero; make them matter.
        theirs = eqx.tree_at(lambda m: m.logit_head.linear2.bias, theirs,
                             jax.random.normal(getkey(), theirs.logit_head.linear2.bias.shape))
        ours = pretrained.from_esm2quinox(theirs)
        tokens = jnp.asarray(esm2quinox.tokenise(["MKVLAGW", "MKV"])[1].tolist())
        tokens = tokens.at[2].set(MASK)
        expected = theirs(tokens)
        np.testing.assert_allclose(ours(tokens), expected.logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.representations(tokens), expected.hidden, rtol=1e-4, atol=1e-4)


def test_shipped_weights_load_and_are_checked(tmp_path):
    model = pretrained.load_protein_lm()
    config = pretrained.model_config()
    assert config["held_out"]["perplexity"] < config["held_out"]["frequency_baseline_perplexity"]
    assert model(tokenize("MKVLA")).shape == (7, len(ALPHABET))
    assert pretrained.WEIGHTS_FILE.stat().st_size < 8_000_000

    weights, settings = tmp_path / "protein_lm.eqx", tmp_path / "protein_lm.json"
    shutil.copy(pretrained.CONFIG_FILE, settings)
    with pytest.raises(FileNotFoundError, match="pretraining.protein_lm"):
        pretrained.load_protein_lm(weights, settings)
    damaged = bytearray(pretrained.WEIGHTS_FILE.read_bytes())
    damaged[-1] ^= 1
    weights.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="checksum"):
        pretrained.load_protein_lm(weights, settings)


def test_save_and_load_round_trip(tiny, tmp_path):
    architecture = {"dim": 16, "num_layers": 2, "num_heads": 2, "hidden_dim": 64}
    weights, settings = tmp_path / "model.eqx", tmp_path / "model.json"
    pretrained.save_protein_lm(tiny, architecture, {"note": "test"}, weights, settings)
    loaded = pretrained.load_protein_lm(weights, settings)
    np.testing.assert_allclose(loaded(tokenize("MKV")), tiny(tokenize("MKV")))


def test_proteome_and_split():
    proteome = proteins.proteome()
    train, held_out = proteins.proteome_split()
    assert len(proteome) == 2100
    assert len(held_out) == 210 and len(train) == 1890
    assert set(held_out) <= set(proteome)
    assert all(set(sequence) <= set(AMINO_ACIDS + "X") for sequence in proteome.values())


def test_gb1_mutants_match_their_names():
    data = proteins.gb1_stability()
    assert len(data) == 813 and data.stability.dtype == np.float32
    for name, sequence in zip(data.mutations, data.sequences, strict=True):
        position = int(name[1:-1])
        assert data.wild_type[position - 2] == name[0] and sequence[position - 2] == name[-1]
        assert sum(a != b for a, b in zip(sequence, data.wild_type, strict=True)) == 1
    core = np.mean([s for m, s in zip(data.mutations, data.stability, strict=True) if m[1:-1] in ("05", "30", "52")])
    assert core < np.mean(data.stability) - 1.0  # mutations of buried residues destabilise


def test_the_training_loss_pools_the_exercises_masked_lm_loss_over_the_batch(getkey):
    tokens = jnp.asarray(np.stack([tokenize(s, length=40) for s in ("MKVLAGWYHRTE" * 3, "MKV" * 5, "AGW" * 11)]))
    model = lambda t: jnp.sin(jnp.arange(33.0)[None, :] * (t[:, None].astype(jnp.float32) + 1.0))  # logits per token
    key = getkey()
    corrupted, chosen = jax.vmap(MASKING.mask_tokens)(tokens, jax.random.split(key, 3))
    per_sequence = jax.vmap(MASKING.masked_lm_loss)(jax.vmap(model)(corrupted), tokens, chosen)
    counts = chosen.sum(axis=1, dtype=jnp.float32)
    expected = jnp.sum(per_sequence * counts) / jnp.sum(counts)
    np.testing.assert_allclose(batch_loss(model, tokens, key), expected, rtol=1e-5)


def test_crops_tiles_and_baseline():
    rng = np.random.default_rng(0)
    windows = crops(["MKVLA" * 100, "MKV"], 32, rng)
    assert windows.shape[1] == 32 and len(windows) == 5 + 1
    assert windows[-1].tolist()[:5] == tokenize("MKV").tolist()
    pieces = tiles(["A" * 40], 16)
    assert pieces.shape == (3, 16) and (pieces == ALPHABET.index("A")).sum() == 40
    assert frequency_baseline(["AAAA"], ["AAAA"]) < frequency_baseline(["AAAA"], ["CCCC"])
