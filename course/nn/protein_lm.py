"""An ESM-2-style protein language model: an encoder-only transformer trained to predict
masked amino acids (Lin et al. 2023, "Evolutionary-scale prediction of atomic-level
protein structure with a language model").

The layout is ESM-2's: its 33-token alphabet, pre-LayerNorm blocks whose self-attention
has biases and rotary position embeddings, exact GELU, a final LayerNorm, and a language
model head `dense -> GELU -> LayerNorm -> embedding^T + bias` that reuses the token
embedding. Real ESM-2 weights, converted to JAX with `esm2quinox`, therefore fit it
(`course.pretrained.protein_lm.from_esm2quinox`); the course's own small model is the
default (`course.pretrained.protein_lm.load_protein_lm`).

Padding tokens are never attended to. `__call__` takes one tokenised sequence (see
`course.nn.protein_lm.tokenize`); batch with `jax.vmap`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from course.nn.transformer import AttentionMask, EquinoxSelfAttention, TransformerBlock, key_padding_mask

ALPHABET: tuple[str, ...] = (
    "<cls>", "<pad>", "<eos>", "<unk>",
    "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C",
    "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>",
)
"""ESM-2's vocabulary, in ESM-2's order: token `i` is `ALPHABET[i]`."""
TOKEN_INDEX = {token: index for index, token in enumerate(ALPHABET)}
CLS, PAD, EOS, UNK, MASK = (TOKEN_INDEX[token] for token in ("<cls>", "<pad>", "<eos>", "<unk>", "<mask>"))
AMINO_ACIDS = "LAGVSERTIDPKQNFYMHWC"
"""The 20 standard amino acids, in the order of the alphabet (tokens 4 to 23)."""
AMINO_ACID_TOKENS = np.array([TOKEN_INDEX[residue] for residue in AMINO_ACIDS])


def tokenize(sequence: str, length: int | None = None) -> np.ndarray:
    """`<cls> sequence <eos>` as ESM-2 token indices, then `<pad>` up to `length`.

    Letters outside the alphabet become `<unk>`. Reference implementation for the library
    (the `protein` track has students write their own).
    """
    tokens = [CLS, *(TOKEN_INDEX.get(residue, UNK) for residue in sequence.upper()), EOS]
    if length is not None:
        if len(tokens) > length:
            raise ValueError(f"The sequence needs {len(tokens)} tokens, more than length={length}.")
        tokens += [PAD] * (length - len(tokens))
    return np.array(tokens, dtype=np.int32)


def detokenize(tokens: Int[ArrayLike, " seq"]) -> str:
    """The residues of a tokenised sequence, special tokens dropped."""
    return "".join(ALPHABET[int(token)] for token in np.asarray(tokens) if len(ALPHABET[int(token)]) == 1)


class LanguageModelHead(eqx.Module):
    """ESM-2's head: `dense -> GELU -> LayerNorm`, then a product with the (shared) token
    embedding matrix plus a bias, giving one logit per token of the alphabet."""

    dense: eqx.nn.Linear
    norm: eqx.nn.LayerNorm
    bias: Float[Array, " vocab"]

    def __init__(self, dim: int, vocab_size: int, *, key: PRNGKeyArray):
        self.dense = eqx.nn.Linear(dim, dim, key=key)
        self.norm = eqx.nn.LayerNorm(dim)
        self.bias = jnp.zeros(vocab_size)

    def __call__(self, x: Float[Array, " dim"], embedding: Float[Array, "vocab dim"]) -> Float[Array, " vocab"]:
        return embedding @ self.norm(jax.nn.gelu(self.dense(x), approximate=False)) + self.bias


class ProteinLM(eqx.Module):
    """An ESM-2-style masked language model over the 33-token `ALPHABET`.

    `token_dropout` reproduces ESM-2's rescaling of the embeddings by the fraction of
    `<mask>` tokens (needed for real ESM-2 weights; the course's model does without).
    """

    token_embedding: eqx.nn.Embedding
    blocks: tuple[TransformerBlock, ...]
    final_norm: eqx.nn.LayerNorm
    lm_head: LanguageModelHead
    num_heads: int = eqx.field(static=True)
    token_dropout: bool = eqx.field(static=True)

    def __init__(self, dim: int, num_layers: int, num_heads: int, *, hidden_dim: int | None = None,
                 token_dropout: bool = False, key: PRNGKeyArray):
        embedding_key, head_key, *block_keys = jax.random.split(key, 2 + 2 * num_layers)
        # Scaled so that the logits, products with these rows, start of order one.
        self.token_embedding = eqx.nn.Embedding(
            weight=jax.random.normal(embedding_key, (len(ALPHABET), dim)) / dim**0.5)
        self.blocks = tuple(
            TransformerBlock(EquinoxSelfAttention(dim, num_heads, rotary=True, bias=True, key=attention_key),
                             dim, hidden_dim or 4 * dim, exact_gelu=True, key=block_key)
            for attention_key, block_key in zip(block_keys[::2], block_keys[1::2], strict=True)
        )
        self.final_norm = eqx.nn.LayerNorm(dim)
        self.lm_head = LanguageModelHead(dim, len(ALPHABET), key=head_key)
        self.num_heads = num_heads
        self.token_dropout = token_dropout

    @staticmethod
    def padding_mask(tokens: Int[ArrayLike, " seq"]) -> AttentionMask:
        """Every position may attend to every non-padding position."""
        return key_padding_mask(jnp.asarray(tokens) != PAD)

    def embed(self, tokens: Int[ArrayLike, " seq"]) -> Float[Array, "seq dim"]:
        """Token embeddings (zero at padding), rescaled as in ESM-2 if `token_dropout`."""
        tokens = jnp.asarray(tokens)
        x = jax.vmap(self.token_embedding)(tokens)
        is_token = tokens != PAD
        if self.token_dropout:
            is_mask = tokens == MASK
            x = jnp.where(is_mask[:, None], 0.0, x)
            observed = jnp.sum(is_mask) / jnp.maximum(jnp.sum(is_token), 1)
            x = x * (1 - 0.15 * 0.8) / (1 - observed)
        return jnp.where(is_token[:, None], x, 0.0)

    def hidden_states(self, tokens: Int[ArrayLike, " seq"]) -> list[Float[Array, "seq dim"]]:
        """The residual stream entering each block, then leaving the last one."""
        mask = self.padding_mask(tokens)
        states = [self.embed(tokens)]
        for block in self.blocks:
            states.append(block(states[-1], mask))
        return states

    def attention_inputs(self, tokens: Int[ArrayLike, " seq"]) -> list[Float[Array, "seq dim"]]:
        """What each block's attention sees (for attention maps): one `(seq, dim)` per block."""
        states = self.hidden_states(tokens)
        return [block.attention_input(x) for block, x in zip(self.blocks, states[:-1], strict=True)]

    def representations(self, tokens: Int[ArrayLike, " seq"]) -> Float[Array, "seq dim"]:
        """The final-layer representation of every position (after the final LayerNorm)."""
        return jax.vmap(self.final_norm)(self.hidden_states(tokens)[-1])

    def logits_from_representations(self, x: Float[Array, "seq dim"]) -> Float[Array, "seq vocab"]:
        return jax.vmap(lambda row: self.lm_head(row, self.token_embedding.weight))(x)

    def __call__(self, tokens: Int[ArrayLike, " seq"]) -> Float[Array, "seq vocab"]:
        """Logits over the 33 tokens at every position."""
        return self.logits_from_representations(self.representations(tokens))
