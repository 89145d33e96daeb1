import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course.nn import UNet, count_parameters
from course.nn.unet import SpatialSelfAttention, pixel_positions


@pytest.fixture(scope="module")
def small():
    return UNet(1, (8, 16), embedding_dim=16, groups=4, num_classes=2, key=jax.random.key(0))


def test_default_unet_size():
    model = UNet(key=jax.random.key(0))
    assert 400_000 < count_parameters(model) < 700_000
    assert model.label_embedding is None


def test_output_has_the_input_shape_and_depends_on_everything(small, rng):
    x = jnp.asarray(rng.normal(size=(1, 16, 16)), jnp.float32)
    out = eqx.filter_jit(small)(x, jnp.asarray(3.0), jnp.asarray(1))
    assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))
    assert not np.allclose(out, small(x, jnp.asarray(500.0), jnp.asarray(1)))
    assert not np.allclose(out, small(x, jnp.asarray(3.0), jnp.asarray(0)))
    assert not np.allclose(out, small(2 * x, jnp.asarray(3.0), jnp.asarray(1)))


def test_missing_label_is_the_null_class(small, rng):
    x = jnp.asarray(rng.normal(size=(1, 16, 16)), jnp.float32)
    np.testing.assert_allclose(small(x, 7.0), small(x, 7.0, jnp.asarray(2)), rtol=1e-6)


def test_each_output_pixel_sees_the_whole_stamp(small):
    """The receptive field covers the image: a change in one corner reaches the other."""
    x = jnp.zeros((1, 16, 16))
    corner = jax.grad(lambda x: small(x, 10.0)[0, 15, 15])(x)
    assert jnp.abs(corner[0, 0, 0]) > 0


def test_vmap_and_grad(small, rng):
    x = jnp.asarray(rng.normal(size=(4, 1, 16, 16)), jnp.float32)
    t = jnp.arange(4.0)
    loss = lambda model: jnp.mean(jax.vmap(model)(x, t) ** 2)
    grads = eqx.filter_grad(loss)(small)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    batched = jax.vmap(small)(x, t)
    np.testing.assert_allclose(batched[2], small(x[2], t[2]), rtol=1e-4, atol=1e-5)


def test_time_scale_maps_continuous_time_onto_steps(rng):
    key = jax.random.key(1)
    steps = UNet(1, (8, 16), embedding_dim=16, groups=4, key=key)
    continuous = UNet(1, (8, 16), embedding_dim=16, groups=4, time_scale=1.0, key=key)
    x = jnp.asarray(rng.normal(size=(1, 8, 8)), jnp.float32)
    np.testing.assert_allclose(steps(x, 250.0), continuous(x, 0.25), rtol=1e-5, atol=1e-6)


def test_pixel_positions_are_offsets_from_the_centre():
    rows, cols = pixel_positions(4, 8)
    np.testing.assert_allclose(rows[:, 0], [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(cols[0], (np.arange(8) - 3.5) / 4)
    assert bool(jnp.all(rows[:, 0:1] == rows)) and bool(jnp.all(cols[0:1] == cols))


def test_position_channels_are_two_extra_inputs(rng):
    """With the positions' input weights set to zero, the network is the plain UNet with the
    same weights; with them, it is no longer blind to where a pixel is."""
    key = jax.random.key(2)
    plain = UNet(1, (8, 16), embedding_dim=16, groups=4, key=key)
    positioned = UNet(1, (8, 16), embedding_dim=16, groups=4, position_channels=True, key=key)
    assert positioned.input_conv.weight.shape[1] == 3
    x = jnp.asarray(rng.normal(size=(1, 8, 8)), jnp.float32)
    blinded = eqx.tree_at(lambda m: m.input_conv.weight, positioned, positioned.input_conv.weight.at[:, 1:].set(0.0))
    conv = positioned.input_conv
    plain = eqx.tree_at(lambda m: (m.input_conv.weight, m.input_conv.bias), plain, (conv.weight[:, :1], conv.bias))
    np.testing.assert_allclose(blinded(x, 5.0), plain(x, 5.0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(positioned(x, 5.0), blinded(x, 5.0))
    # A blank image: the plain network's output is the same away from the border, the positioned one's is not.
    blank = jnp.zeros((1, 8, 8))
    assert not np.allclose(positioned(blank, 5.0)[0, 3, 3], positioned(blank, 5.0)[0, 4, 4])


def test_spatial_attention_treats_positions_alike_and_mixes_them(rng):
    """Without a position encoding, permuting the positions of a feature map permutes the
    attention layer's output the same way; and, unlike a convolution, one position's
    output depends on the farthest one's input."""
    layer = SpatialSelfAttention(8, groups=4, num_heads=2, key=jax.random.key(3))
    x = jnp.asarray(rng.normal(size=(8, 4, 4)), jnp.float32)
    order = jnp.asarray(rng.permutation(16))
    permute = lambda h: h.reshape(8, 16)[:, order].reshape(8, 4, 4)
    np.testing.assert_allclose(layer(permute(x)), permute(layer(x)), rtol=1e-5, atol=1e-5)
    far = jax.grad(lambda x: layer(x)[0, 0, 0])(x)
    assert jnp.abs(far[:, 3, 3]).max() > 1e-4


def test_attention_adds_one_layer_between_the_middle_blocks(rng):
    """With the attention layer's output projection set to zero, the network is the plain
    UNet with the same weights (the layer is a residual branch)."""
    key = jax.random.key(4)
    plain = UNet(1, (8, 16), embedding_dim=16, groups=4, key=key)
    attending = UNet(1, (8, 16), embedding_dim=16, groups=4, attention=True, key=key)
    assert plain.middle_attention is None and count_parameters(attending) > count_parameters(plain)
    x = jnp.asarray(rng.normal(size=(1, 8, 8)), jnp.float32)
    assert not np.allclose(attending(x, 5.0), plain(x, 5.0), atol=1e-4)
    output = attending.middle_attention.attention.attention.output_proj
    silenced = eqx.tree_at(lambda m: (m.middle_attention.attention.attention.output_proj.weight,
                                      m.middle_attention.attention.attention.output_proj.bias),
                           attending, (jnp.zeros_like(output.weight), jnp.zeros_like(output.bias)))
    # the layers built after the attention drew other keys: copy the plain ones in
    silenced = eqx.tree_at(lambda m: (m.up_blocks, m.upsamples, m.output_conv), silenced,
                           (plain.up_blocks, plain.upsamples, plain.output_conv))
    np.testing.assert_allclose(silenced(x, 5.0), plain(x, 5.0), rtol=1e-5, atol=1e-6)
