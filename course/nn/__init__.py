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
from course.nn.unet import UNet, count_parameters

__all__ = [
    "EquinoxSelfAttention",
    "FeedForward",
    "TimeMLP",
    "Transformer",
    "TransformerBlock",
    "UNet",
    "count_parameters",
    "key_padding_mask",
    "sinusoidal_embedding",
]
