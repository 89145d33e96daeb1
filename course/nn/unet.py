"""A small UNet for diffusion models on images, in equinox.

The network maps a noisy image `x_t` (channels first), its diffusion time `t` and
optionally a class label to an image of the same shape (the predicted noise, say). It
follows Ho et al. (2020) in a reduced form: a sinusoidal time embedding fed through an MLP
and added inside every residual block; residual blocks with GroupNorm and SiLU; strided
convolutions to go down; nearest-neighbour upsampling followed by a convolution to go up
(a transposed convolution does the same job, but its backward pass is about 20 times
slower on CPU); skip connections concatenated on the way up. With the defaults it has
about 0.5M parameters and works on 32x32 images.

With `position_channels=True` the network also sees two fixed input channels, each pixel's
row and column offset from the image centre (in units of half the image size), so that it
can tell a galaxy's faint outskirts from the empty sky around it: convolutions alone are
blind to where they are, up to the zero padding at the border.

With `attention=True` a self-attention layer (Ho et al. 2020 put one at 16x16) sits between
the two residual blocks at the lowest resolution, where every position can then weigh
every other: a galaxy's shape is a property of the whole image, which convolutions only
reach through a stack of local steps.

A label `y` in `0, ..., num_classes - 1` adds a learned embedding to the time embedding;
`y = num_classes` (or `None`) is the "no label" class used by classifier-free guidance.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Real

from course.nn.embeddings import sinusoidal_embedding
from course.nn.transformer import EquinoxSelfAttention


class ResidualBlock(eqx.Module):
    """`x + conv(silu(norm(conv(silu(norm(x))) + time))))`, with a 1x1 convolution on the
    skip path when the number of channels changes."""

    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    time_projection: eqx.nn.Linear
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, groups: int, *, key: PRNGKeyArray):
        keys = jax.random.split(key, 4)
        self.norm1 = eqx.nn.GroupNorm(min(groups, in_channels), in_channels)
        self.conv1 = eqx.nn.Conv2d(in_channels, out_channels, 3, padding=1, key=keys[0])
        self.time_projection = eqx.nn.Linear(embedding_dim, out_channels, key=keys[1])
        self.norm2 = eqx.nn.GroupNorm(min(groups, out_channels), out_channels)
        self.conv2 = eqx.nn.Conv2d(out_channels, out_channels, 3, padding=1, key=keys[2])
        self.skip = None if in_channels == out_channels else eqx.nn.Conv2d(in_channels, out_channels, 1, key=keys[3])

    def __call__(self, x: Float[Array, "c_in h w"], embedding: Float[Array, " e"]) -> Float[Array, "c_out h w"]:
        h = self.conv1(jax.nn.silu(self.norm1(x)))
        h = h + self.time_projection(embedding)[:, None, None]
        h = self.conv2(jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class SpatialSelfAttention(eqx.Module):
    """`x + attention(norm(x))` over the `h * w` positions of a feature map, each a token of
    `c` features (no position encoding: the convolutions around it carry where things are)."""

    norm: eqx.nn.GroupNorm
    attention: EquinoxSelfAttention

    def __init__(self, channels: int, groups: int, num_heads: int = 4, *, key: PRNGKeyArray):
        self.norm = eqx.nn.GroupNorm(min(groups, channels), channels)
        self.attention = EquinoxSelfAttention(channels, num_heads, bias=True, key=key)

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, "c h w"]:
        tokens = self.norm(x).reshape(x.shape[0], -1).T
        return x + self.attention(tokens).T.reshape(x.shape)


class Upsample(eqx.Module):
    """Double the height and width: nearest-neighbour repeat, then a 3x3 convolution."""

    conv: eqx.nn.Conv2d

    def __init__(self, in_channels: int, out_channels: int, *, key: PRNGKeyArray):
        self.conv = eqx.nn.Conv2d(in_channels, out_channels, 3, padding=1, key=key)

    def __call__(self, x: Float[Array, "c_in h w"]) -> Float[Array, "c_out h2 w2"]:
        return self.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


class UNet(eqx.Module):
    """A UNet `(x, t, y) -> output` for one image `x` of shape `(channels, height, width)`.

    `channels[i]` is the width at resolution level `i` (the image is halved between levels,
    so height and width must be divisible by `2 ** (len(channels) - 1)`); each level has
    `blocks_per_level` residual blocks on the way down and as many on the way up. `t` is
    the diffusion time, a scalar (pass an array, not a Python float, so that a jitted call
    is not recompiled for each value) on the scale `time_scale` (1000 for DDPM step indices,
    1 for continuous time in `[0, 1]`). Set `num_classes > 0` for a class-conditional model.
    """

    time_mlp: eqx.nn.MLP
    label_embedding: eqx.nn.Embedding | None
    input_conv: eqx.nn.Conv2d
    down_blocks: list[list[ResidualBlock]]
    downsamples: list[eqx.nn.Conv2d]
    middle_blocks: list[ResidualBlock]
    middle_attention: SpatialSelfAttention | None
    up_blocks: list[list[ResidualBlock]]
    upsamples: list[Upsample]
    output_norm: eqx.nn.GroupNorm
    output_conv: eqx.nn.Conv2d
    in_channels: int = eqx.field(static=True)
    channels: tuple[int, ...] = eqx.field(static=True)
    blocks_per_level: int = eqx.field(static=True)
    embedding_dim: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)
    position_channels: bool = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64),
        *,
        blocks_per_level: int = 1,
        embedding_dim: int = 128,
        groups: int = 8,
        num_classes: int = 0,
        time_scale: float = 1000.0,
        position_channels: bool = False,
        attention: bool = False,
        key: PRNGKeyArray,
    ):
        self.in_channels = in_channels
        self.channels = tuple(channels)
        self.blocks_per_level = blocks_per_level
        self.embedding_dim = embedding_dim
        self.num_classes = num_classes
        self.time_scale = float(time_scale)
        self.position_channels = position_channels
        keys = iter(jax.random.split(key, 8 + 4 * len(channels) * (blocks_per_level + 1)))

        self.time_mlp = eqx.nn.MLP(
            embedding_dim, embedding_dim, embedding_dim, 1, activation=jax.nn.silu, key=next(keys)
        )
        self.label_embedding = (
            eqx.nn.Embedding(num_classes + 1, embedding_dim, key=next(keys)) if num_classes > 0 else None
        )
        input_channels = in_channels + (2 if position_channels else 0)
        self.input_conv = eqx.nn.Conv2d(input_channels, channels[0], 3, padding=1, key=next(keys))

        block = lambda c_in, c_out: ResidualBlock(c_in, c_out, embedding_dim, groups, key=next(keys))
        self.down_blocks, self.downsamples, skip_channels = [], [], []
        current = channels[0]
        for level, width in enumerate(channels):
            blocks = []
            for _ in range(blocks_per_level):
                blocks.append(block(current, width))
                current = width
                skip_channels.append(current)
            self.down_blocks.append(blocks)
            if level < len(channels) - 1:
                self.downsamples.append(eqx.nn.Conv2d(current, current, 3, stride=2, padding=1, key=next(keys)))
        self.middle_blocks = [block(current, current), block(current, current)]
        self.middle_attention = SpatialSelfAttention(current, groups, key=next(keys)) if attention else None
        self.up_blocks, self.upsamples = [], []
        for level in reversed(range(len(channels))):
            blocks = []
            for _ in range(blocks_per_level):
                blocks.append(block(current + skip_channels.pop(), channels[level]))
                current = channels[level]
            self.up_blocks.append(blocks)
            if level > 0:
                self.upsamples.append(Upsample(current, channels[level - 1], key=next(keys)))
                current = channels[level - 1]
        self.output_norm = eqx.nn.GroupNorm(min(groups, current), current)
        self.output_conv = eqx.nn.Conv2d(current, in_channels, 3, padding=1, key=next(keys))

    def embed(self, t: Real[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None) -> Float[Array, " e"]:
        """The embedding of time `t` (and label `y`) added inside every residual block."""
        t = jnp.asarray(t, dtype=float) * (1000.0 / self.time_scale)
        embedding = self.time_mlp(sinusoidal_embedding(t, self.embedding_dim))
        if self.label_embedding is not None:
            y = self.num_classes if y is None else y
            embedding = embedding + self.label_embedding(jnp.asarray(y))
        return embedding

    def __call__(
        self, x: Float[Array, "c h w"], t: Real[ArrayLike, ""], y: Int[ArrayLike, ""] | None = None
    ) -> Float[Array, "c h w"]:
        embedding = self.embed(t, y)
        if self.position_channels:
            x = jnp.concatenate([x, pixel_positions(*x.shape[1:], dtype=x.dtype)])
        h = self.input_conv(x)
        skips = []
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, embedding)
                skips.append(h)
            if level < len(self.downsamples):
                h = self.downsamples[level](h)
        h = self.middle_blocks[0](h, embedding)
        if self.middle_attention is not None:
            h = self.middle_attention(h)
        h = self.middle_blocks[1](h, embedding)
        for level, blocks in enumerate(self.up_blocks):
            for block in blocks:
                h = block(jnp.concatenate([h, skips.pop()], axis=0), embedding)
            if level < len(self.upsamples):
                h = self.upsamples[level](h)
        return self.output_conv(jax.nn.silu(self.output_norm(h)))


def pixel_positions(height: int, width: int, dtype=jnp.float32) -> Float[Array, "2 height width"]:
    """Each pixel's row and column offset from the image centre, divided by half the image's
    height (the row) or width (the column): values in `(-1, 1)`."""
    rows = (jnp.arange(height, dtype=dtype) - (height - 1) / 2) / (height / 2)
    cols = (jnp.arange(width, dtype=dtype) - (width - 1) / 2) / (width / 2)
    return jnp.stack(jnp.meshgrid(rows, cols, indexing="ij"))


def count_parameters(model: eqx.Module) -> int:
    """The number of trainable scalars (inexact array entries) in a model."""
    return sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
