"""The checks say what is wrong in a student's terms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from grader import checks


def message_of(check, *args, **kwargs) -> str:
    with pytest.raises(checks.CheckFailed) as failure:
        check(*args, **kwargs)
    return str(failure.value)


def test_scalars_show_yours_and_expected():
    assert message_of(checks.assert_close, jnp.float32(1), jnp.float32(2), call="loss(x)") == (
        "loss(x): yours 1.0, expected 2.0."
    )


def test_arrays_show_the_first_differing_entries():
    got = jnp.zeros((4, 3)).at[1, 2].set(5.0).at[3, 0].set(-1.0)
    message = message_of(checks.assert_close, got, jnp.zeros((4, 3)), call="f(x)")
    assert message.splitlines() == [
        "f(x): 2 of 12 entries differ from what was expected.",
        "  at [1, 2]: yours 5.0, expected 0.0",
        "  at [3, 0]: yours -1.0, expected 0.0",
    ]


def test_shape_dtype_and_structure_mismatches_are_named():
    assert "returned shape (3,), expected (2,)" in message_of(
        checks.assert_close, jnp.zeros(3), jnp.zeros(2), call="f(x)")
    assert "returned dtype int32, expected float32" in message_of(
        checks.assert_close, jnp.zeros(2, jnp.int32), jnp.zeros(2), call="f(x)")
    assert "f(x) returned" in message_of(checks.assert_close, (jnp.zeros(2),), jnp.zeros(2), call="f(x)")


def test_close_values_pass():
    checks.assert_close({"a": jnp.ones(3)}, {"a": jnp.ones(3) + 1e-7}, call="f(x)")


def test_python_control_flow_under_jit_gets_a_hint():
    def branchy(x):
        return x if x.sum() > 0 else -x

    message = message_of(checks.jitted, branchy, jnp.ones(2), call="branchy(x)")
    assert "does not work under jax.jit" in message and "jnp.where" in message


def test_key_reuse_is_caught():
    def reuses(key):
        return jax.random.normal(key, (2,)) + jax.random.normal(key, (2,))

    message = message_of(checks.assert_no_key_reuse, reuses, jax.random.key(0), call="reuses(key)")
    assert "uses a PRNG key twice" in message


def test_non_finite_values_are_caught():
    assert "NaN or infinite" in message_of(checks.assert_finite, jnp.array([1.0, jnp.nan]), call="f(x)")


def test_sharding_mismatches_say_where_the_array_lives_and_where_it_should():
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    assert jax.device_count() >= 8, "the course's pytest plugin asks JAX for 8 CPU devices"
    mesh = jax.make_mesh((8,), ("data",), devices=jax.devices()[:8])
    split = NamedSharding(mesh, P("data"))
    checks.assert_sharding({"x": jax.device_put(jnp.zeros((8, 2)), split)}, split, call="f(x)")
    message = message_of(checks.assert_sharding, {"x": jnp.zeros((8, 2))}, split, call="f(x)")
    assert message == ("f(x)['x'] is laid out as a SingleDeviceSharding on 1 device, "
                       "expected P('data',) on a mesh {'data': 8}.")
    replicated = jax.device_put(jnp.zeros(8), NamedSharding(mesh, P()))
    assert "is laid out as P() on a mesh {'data': 8}" in message_of(
        checks.assert_sharding, replicated, split, call="f(x)")
    assert "is a ndarray, expected a jax.Array" in message_of(
        checks.assert_sharding, __import__("numpy").zeros(8), split, call="f(x)")
