"""Transformer scaffolding: pre-LayerNorm blocks around a pluggable self-attention.

The attention itself is whatever module you give the model: the `attention` track plugs
in the students' own `MultiheadAttention`, the `protein` track's encoder its rotary
variant, and `EquinoxSelfAttention` (equinox's multi-head attention, optionally with
rotary embeddings) is the ready-made default. A self-attention module maps
`(x: (seq, dim), mask: (seq, seq) | None)` to `(seq, dim)`, `mask[i, j]` saying whether
position `i` may attend to position `j`.

As everywhere in the course, `__call__` takes one sequence; batch with `jax.vmap`.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

AttentionMask = Bool[Array, "seq seq"]
MakeAttention = Callable[[PRNGKeyArray], eqx.Module]


def key_padding_mask(is_token: Bool[Array, " seq"]) -> AttentionMask:
    """The attention mask letting every position attend to the real tokens only.

    `is_token[j]` is False at padding; row `i` of the result is `is_token` for every `i`.
    """
    return jnp.broadcast_to(is_token[None, :], (is_token.shape[0], is_token.shape[0]))


class EquinoxSelfAttention(eqx.Module):
    """Multi-head self-attention from `eqx.nn.MultiheadAttention`, with optional rotary
    position embeddings on queries and keys (`eqx.nn.RotaryPositionalEmbedding`), an
    optional causal mask, and optional biases in the four projections (as in ESM-2)."""

    attention: eqx.nn.MultiheadAttention
    rotary: eqx.nn.RotaryPositionalEmbedding | None
    causal: bool = eqx.field(static=True)

    def __init__(self, dim: int, num_heads: int, *, rotary: bool = False, causal: bool = False,
                 bias: bool = False, key: PRNGKeyArray):
        if dim % num_heads != 0:
            raise ValueError(f"dim ({dim}) must be a multiple of num_heads ({num_heads}).")
        self.attention = eqx.nn.MultiheadAttention(
            num_heads, dim, use_query_bias=bias, use_key_bias=bias, use_value_bias=bias,
            use_output_bias=bias, key=key,
        )
        self.rotary = eqx.nn.RotaryPositionalEmbedding(dim // num_heads) if rotary else None
        self.causal = causal

    def _rotate_heads(self, query_heads, key_heads, value_heads):
        rotate = jax.vmap(self.rotary, in_axes=1, out_axes=1)  # over the heads axis
        return rotate(query_heads), rotate(key_heads), value_heads

    def __call__(self, x: Float[Array, "seq dim"], mask: AttentionMask | None = None) -> Float[Array, "seq dim"]:
        length = x.shape[0]
        if self.causal:
            causal = jnp.tril(jnp.ones((length, length), dtype=bool))
            mask = causal if mask is None else mask & causal
        process_heads = None if self.rotary is None else self._rotate_heads
        return self.attention(x, x, x, mask=mask, process_heads=process_heads)


class FeedForward(eqx.Module):
    """The position-wise two-layer perceptron of a transformer block, GELU in between
    (its tanh approximation, or the exact erf form with `exact_gelu=True`, as in ESM-2)."""

    hidden: eqx.nn.Linear
    output: eqx.nn.Linear
    exact_gelu: bool = eqx.field(static=True)

    def __init__(self, dim: int, hidden_dim: int, *, exact_gelu: bool = False, key: PRNGKeyArray):
        hidden_key, output_key = jax.random.split(key)
        self.hidden = eqx.nn.Linear(dim, hidden_dim, key=hidden_key)
        self.output = eqx.nn.Linear(hidden_dim, dim, key=output_key)
        self.exact_gelu = exact_gelu

    def __call__(self, x: Float[Array, " dim"]) -> Float[Array, " dim"]:
        return self.output(jax.nn.gelu(self.hidden(x), approximate=not self.exact_gelu))


class TransformerBlock(eqx.Module):
    """`x + attention(norm(x))`, then `x + feed_forward(norm(x))` (pre-LayerNorm)."""

    attention_norm: eqx.nn.LayerNorm
    attention: eqx.Module
    feed_forward_norm: eqx.nn.LayerNorm
    feed_forward: FeedForward

    def __init__(self, attention: eqx.Module, dim: int, hidden_dim: int, *, exact_gelu: bool = False,
                 key: PRNGKeyArray):
        self.attention_norm = eqx.nn.LayerNorm(dim)
        self.attention = attention
        self.feed_forward_norm = eqx.nn.LayerNorm(dim)
        self.feed_forward = FeedForward(dim, hidden_dim, exact_gelu=exact_gelu, key=key)

    def attention_input(self, x: Float[Array, "seq dim"]) -> Float[Array, "seq dim"]:
        """What the attention of this block sees: the normalised residual stream."""
        return jax.vmap(self.attention_norm)(x)

    def __call__(self, x: Float[Array, "seq dim"], mask: AttentionMask | None = None) -> Float[Array, "seq dim"]:
        x = x + self.attention(self.attention_input(x), mask)
        return x + jax.vmap(self.feed_forward)(jax.vmap(self.feed_forward_norm)(x))


class Transformer(eqx.Module):
    """Token embedding (plus learned positions when `max_length` is given), a stack of
    `TransformerBlock`s, a final LayerNorm and a linear head giving one vector of
    `output_size` logits per position.

    `make_attention(key)` builds the self-attention module of one block; the default is
    `EquinoxSelfAttention(dim, num_heads)`.
    """

    token_embedding: eqx.nn.Embedding
    position_embedding: eqx.nn.Embedding | None
    blocks: tuple[TransformerBlock, ...]
    final_norm: eqx.nn.LayerNorm
    head: eqx.nn.Linear

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        num_layers: int,
        *,
        num_heads: int = 4,
        make_attention: MakeAttention | None = None,
        max_length: int | None = None,
        hidden_dim: int | None = None,
        output_size: int | None = None,
        key: PRNGKeyArray,
    ):
        if make_attention is None:
            def make_attention(attention_key):
                return EquinoxSelfAttention(dim, num_heads, key=attention_key)
        token_key, position_key, head_key, *block_keys = jax.random.split(key, 3 + 2 * num_layers)
        self.token_embedding = eqx.nn.Embedding(vocab_size, dim, key=token_key)
        self.position_embedding = (
            None if max_length is None else eqx.nn.Embedding(max_length, dim, key=position_key)
        )
        self.blocks = tuple(
            TransformerBlock(make_attention(attention_key), dim, hidden_dim or 4 * dim, key=block_key)
            for attention_key, block_key in zip(block_keys[::2], block_keys[1::2], strict=True)
        )
        self.final_norm = eqx.nn.LayerNorm(dim)
        self.head = eqx.nn.Linear(dim, output_size or vocab_size, key=head_key)

    def embed(self, tokens: Int[ArrayLike, " seq"]) -> Float[Array, "seq dim"]:
        """Token embeddings, plus position embeddings if the model has them."""
        tokens = jnp.asarray(tokens)
        x = jax.vmap(self.token_embedding)(tokens)
        if self.position_embedding is not None:
            if tokens.shape[0] > self.position_embedding.num_embeddings:
                raise ValueError(f"The sequence has {tokens.shape[0]} tokens; this model takes at most "
                                 f"{self.position_embedding.num_embeddings}.")
            x = x + jax.vmap(self.position_embedding)(jnp.arange(tokens.shape[0]))
        return x

    def hidden_states(self, tokens: Int[ArrayLike, " seq"], mask: AttentionMask | None = None
                      ) -> list[Float[Array, "seq dim"]]:
        """The residual stream entering each block, then leaving the last one."""
        states = [self.embed(tokens)]
        for block in self.blocks:
            states.append(block(states[-1], mask))
        return states

    def attention_inputs(self, tokens: Int[ArrayLike, " seq"], mask: AttentionMask | None = None
                         ) -> list[Float[Array, "seq dim"]]:
        """What each block's attention sees (for attention maps): one `(seq, dim)` per block."""
        states = self.hidden_states(tokens, mask)
        return [block.attention_input(x) for block, x in zip(self.blocks, states[:-1], strict=True)]

    def __call__(self, tokens: Int[ArrayLike, " seq"], mask: AttentionMask | None = None
                 ) -> Float[Array, "seq output_size"]:
        x = self.hidden_states(tokens, mask)[-1]
        return jax.vmap(self.head)(jax.vmap(self.final_norm)(x))
