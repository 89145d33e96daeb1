import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import data, nn, plotting


def test_equinox_self_attention_is_equinox_attention(getkey):
    layer = nn.EquinoxSelfAttention(8, 2, key=getkey())
    x = jax.random.normal(getkey(), (5, 8))
    np.testing.assert_allclose(layer(x), layer.attention(x, x, x), rtol=1e-6)


def test_equinox_self_attention_causal_ignores_the_future(getkey):
    layer = nn.EquinoxSelfAttention(8, 2, rotary=True, causal=True, key=getkey())
    x = jax.random.normal(getkey(), (6, 8))
    changed_future = x.at[4:].set(jax.random.normal(getkey(), (2, 8)))
    np.testing.assert_allclose(layer(x)[:4], layer(changed_future)[:4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(layer(x)[4:], layer(changed_future)[4:])


def test_equinox_self_attention_checks_the_head_count(getkey):
    with pytest.raises(ValueError, match="multiple"):
        nn.EquinoxSelfAttention(10, 3, key=getkey())


def test_key_padding_mask():
    mask = nn.key_padding_mask(jnp.array([True, True, False]))
    np.testing.assert_array_equal(mask, [[True, True, False]] * 3)


def test_transformer_shapes_and_residual_structure(getkey):
    model = nn.Transformer(11, 16, 2, num_heads=4, max_length=6, output_size=3, key=getkey())
    tokens = jnp.array([1, 5, 7, 0, 10])
    assert model(tokens).shape == (5, 3)
    assert jax.vmap(model)(jnp.stack([tokens, tokens])).shape == (2, 5, 3)
    states = model.hidden_states(tokens)
    assert len(states) == 3
    np.testing.assert_allclose(states[1], model.blocks[0](states[0]), rtol=1e-6)
    inputs = model.attention_inputs(tokens)
    np.testing.assert_allclose(inputs[1], jax.vmap(model.blocks[1].attention_norm)(states[1]), rtol=1e-6)
    with pytest.raises(ValueError, match="at most 6"):
        model(jnp.zeros(7, dtype=int))


def test_transformer_positions_break_permutation_symmetry(getkey):
    tokens = jnp.array([3, 1, 4, 1, 5])
    shuffle = jnp.array([4, 2, 0, 1, 3])
    without = nn.Transformer(6, 8, 1, num_heads=2, key=getkey())
    np.testing.assert_allclose(without(tokens[shuffle]), without(tokens)[shuffle], rtol=1e-5, atol=1e-6)
    with_positions = nn.Transformer(6, 8, 1, num_heads=2, max_length=5, key=getkey())
    assert not np.allclose(with_positions(tokens[shuffle]), with_positions(tokens)[shuffle], atol=1e-4)


def test_transformer_takes_any_attention_module(getkey):
    class Identity(eqx.Module):
        def __call__(self, x, mask=None):
            return x

    model = nn.Transformer(4, 8, 2, make_attention=lambda key: Identity(), key=getkey())
    assert all(isinstance(block.attention, Identity) for block in model.blocks)
    assert model(jnp.array([0, 1, 2])).shape == (3, 4)


@pytest.mark.parametrize("task", [data.reverse_task, data.sort_task])
def test_sequence_tasks(task, getkey):
    tokens, targets = task(getkey(), 50, 6, 4)
    assert tokens.shape == targets.shape == (50, 6)
    assert int(tokens.min()) >= 0 and int(tokens.max()) < 4
    np.testing.assert_array_equal(np.sort(tokens, axis=1), np.sort(targets, axis=1))
    again, _ = task(jax.random.key(0), 5, 6, 4)
    np.testing.assert_array_equal(again, task(jax.random.key(0), 5, 6, 4)[0])
    with pytest.raises(ValueError):
        task(getkey(), 5, 6, 1)


def test_reverse_and_sort_targets(getkey):
    tokens, reversed_ = data.reverse_task(getkey(), 3, 5, 9)
    np.testing.assert_array_equal(reversed_, tokens[:, ::-1])
    tokens, sorted_ = data.sort_task(getkey(), 3, 5, 9)
    assert np.all(np.diff(np.asarray(sorted_), axis=1) >= 0)


def test_plot_attention_maps_draws_a_grid():
    weights = np.full((2, 3, 4, 4), 0.25)
    axes = plotting.plot_attention_maps(weights, query_labels=list("abcd"), key_labels=list("abcd"), title="t")
    assert axes.shape == (2, 3)
    assert axes[1, 0].get_xticklabels()[0].get_text() == "a"
    with pytest.raises((TypeError, ValueError)):  # the shape check, or jaxtyping's under pytest
        plotting.plot_attention_maps(weights[0])
