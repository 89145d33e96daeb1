"""Neural networks shared by the tracks."""

from course.nn.embeddings import sinusoidal_embedding
from course.nn.mlp import TimeMLP
from course.nn.unet import UNet, count_parameters

__all__ = ["TimeMLP", "UNet", "count_parameters", "sinusoidal_embedding"]
