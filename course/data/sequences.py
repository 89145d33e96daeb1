"""Toy sequence-to-sequence tasks whose solutions show up in attention maps.

Each task returns integer `tokens` and `targets` of shape `(num_examples, length)` with
values in `[0, vocab_size)`: one target token per input position, so that an encoder
(no causal mask) can learn them with a per-position cross-entropy.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

Tokens = Int[Array, "num_examples length"]


def _random_tokens(key: PRNGKeyArray, num_examples: int, length: int, vocab_size: int) -> Tokens:
    if num_examples < 1 or length < 1 or vocab_size < 2:
        raise ValueError("num_examples and length must be positive and vocab_size at least 2.")
    return jax.random.randint(key, (num_examples, length), 0, vocab_size)


def reverse_task(key: PRNGKeyArray, num_examples: int, length: int, vocab_size: int) -> tuple[Tokens, Tokens]:
    """Random sequences and the same sequences reversed: position `i` must copy the token
    at `length - 1 - i`, an anti-diagonal in a good attention map."""
    tokens = _random_tokens(key, num_examples, length, vocab_size)
    return tokens, tokens[:, ::-1]


def sort_task(key: PRNGKeyArray, num_examples: int, length: int, vocab_size: int) -> tuple[Tokens, Tokens]:
    """Random sequences and the same sequences sorted in increasing order."""
    tokens = _random_tokens(key, num_examples, length, vocab_size)
    return tokens, jnp.sort(tokens, axis=1)
