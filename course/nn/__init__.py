"""Neural networks shared by the tracks."""

from course.nn.embeddings import sinusoidal_embedding
from course.nn.mlp import TimeMLP

__all__ = ["TimeMLP", "sinusoidal_embedding"]
