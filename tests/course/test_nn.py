import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from course import nn


def test_sinusoidal_embedding_matches_formula():
    dim, max_period, t = 8, 100.0, 3.7
    embedding = nn.sinusoidal_embedding(jnp.asarray(t), dim, max_period=max_period)
    frequencies = max_period ** (-np.arange(dim // 2) / (dim // 2))
    expected = np.concatenate([np.sin(t * frequencies), np.cos(t * frequencies)])
    assert embedding.shape == (dim,)
    np.testing.assert_allclose(embedding, expected, rtol=1e-5, atol=1e-6)


def test_sinusoidal_embedding_accepts_python_and_integer_times():
    at_zero = nn.sinusoidal_embedding(0, 6)
    np.testing.assert_array_equal(at_zero, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    assert at_zero.dtype == jnp.float32
    np.testing.assert_allclose(nn.sinusoidal_embedding(jnp.asarray(5), 16), nn.sinusoidal_embedding(5.0, 16))


def test_sinusoidal_embedding_rejects_odd_dim():
    with pytest.raises(ValueError, match="even"):
        nn.sinusoidal_embedding(1.0, 7)


def _num_parameters(model):
    return sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))


def test_time_mlp_default_size(getkey):
    assert 30_000 <= _num_parameters(nn.TimeMLP(2, key=getkey())) <= 70_000


def test_time_mlp_single_example_batched_and_jitted(getkey):
    model = nn.TimeMLP(3, hidden_dim=16, depth=2, time_embedding_dim=8, key=getkey())
    x = jax.random.normal(getkey(), (5, 3))
    t = jnp.linspace(0.0, 1.0, 5)
    single = model(x[0], t[0])
    assert single.shape == (3,)
    assert single.dtype == jnp.float32
    batched = jax.vmap(model)(x, t)
    assert batched.shape == (5, 3)
    np.testing.assert_allclose(batched[0], single, rtol=1e-5, atol=1e-6)
    jitted = eqx.filter_jit(lambda model, x, t: jax.vmap(model)(x, t))
    np.testing.assert_allclose(jitted(model, x, t), batched, rtol=1e-5, atol=1e-6)
    shared_time = jax.vmap(model, in_axes=(0, None))(x, 0.5)
    assert shared_time.shape == (5, 3)


def test_time_mlp_integer_steps_are_normalised_by_max_time(getkey):
    key = getkey()
    discrete = nn.TimeMLP(2, max_time=1000, key=key)
    continuous = nn.TimeMLP(2, max_time=1.0, key=key)
    x = jnp.array([0.3, -1.2])
    for step in (0, 250, 999):
        np.testing.assert_allclose(discrete(x, step), continuous(x, step / 1000), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(discrete(x, jnp.asarray(250)), discrete(x, 250.0), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(discrete, in_axes=(None, 0))(x, jnp.arange(3))[2], discrete(x, 2), rtol=1e-5)


def test_time_mlp_depends_on_time_and_input(getkey):
    model = nn.TimeMLP(2, key=getkey())
    x = jnp.array([0.5, 0.5])
    assert not np.allclose(model(x, 0.1), model(x, 0.9))
    assert not np.allclose(model(x, 0.1), model(-x, 0.1))


def test_time_mlp_gradients_are_finite(getkey):
    model = nn.TimeMLP(2, hidden_dim=32, key=getkey())
    x = jax.random.normal(getkey(), (8, 2))
    t = jax.random.randint(getkey(), (8,), 0, 10).astype(jnp.float32)

    @eqx.filter_grad
    def grad_of_loss(model):
        return jnp.mean(jax.vmap(model)(x, t) ** 2)

    grads = grad_of_loss(model)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(jnp.all(jnp.isfinite(g)) for g in leaves)
    assert any(jnp.any(g != 0) for g in leaves)


def test_time_mlp_depth_and_width(getkey):
    model = nn.TimeMLP(4, hidden_dim=10, depth=5, time_embedding_dim=6, key=getkey())
    assert len(model.hidden_layers) == len(model.time_layers) == 5
    expected = (4 * 10 + 10) + 5 * (10 * 10 + 10) + 5 * (6 * 10 + 10) + (10 * 4 + 4)
    assert _num_parameters(model) == expected
    assert model(jnp.ones(4), 0.0).shape == (4,)
    assert math.isclose(nn.TimeMLP(1, max_time=7, key=getkey()).max_time, 7.0)
