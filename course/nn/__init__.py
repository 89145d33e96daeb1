"""Neural networks shared by the tracks."""

from course.nn.embeddings import sinusoidal_embedding
from course.nn.mlp import TimeMLP
from course.nn.transformer import (
    EquinoxSelfAttention,
    FeedForward,
    Transformer,
    TransformerBlock,
    key_padding_mask,
)

__all__ = [
    "EquinoxSelfAttention",
    "FeedForward",
    "TimeMLP",
    "Transformer",
    "TransformerBlock",
    "key_padding_mask",
    "sinusoidal_embedding",
]
