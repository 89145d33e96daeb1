"""Visible tests for 02_data_parallel.py.

Run them with `uv run pytest exercises/scaling/test_02_data_parallel.py`
(add `--exercise data_parallel_step` to check a single exercise). They run on 8 simulated
CPU devices, which the course's pytest plugin asks JAX for before anything else starts it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from grader import checks


def mlp_loss(params, batch):
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


def mlp_problem(rng, batch_size=32):
    params = {"w1": rng.normal(size=(3, 8)).astype(np.float32), "b1": rng.normal(size=(8,)).astype(np.float32),
              "w2": rng.normal(size=(8, 2)).astype(np.float32)}
    batch = (rng.normal(size=(batch_size, 3)).astype(np.float32), rng.normal(size=(batch_size, 2)).astype(np.float32))
    return params, batch


@pytest.mark.exercise("data_parallel_step")
def test_data_parallel_step_equals_the_single_device_step(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    params, batch = mlp_problem(rng)
    on_one_device = jax.device_put(params, jax.devices("cpu")[0])  # the step must replicate them
    new_params, loss = submission.data_parallel_step(mlp_loss, on_one_device, batch, mesh, 0.1)
    expected_loss, grads = jax.jit(jax.value_and_grad(mlp_loss))(params, batch)
    expected = jax.tree.map(lambda p, g: p - np.float32(0.1) * np.asarray(g), params, grads)
    call = "data_parallel_step(mlp_loss, params, batch of 32, mesh of 8, 0.1)"
    checks.assert_close(loss, expected_loss, call=call + " loss", rtol=1e-5, atol=1e-6)
    checks.assert_close(new_params, expected, call=call + " params", rtol=1e-5, atol=1e-6)
    checks.assert_sharding(new_params, NamedSharding(mesh, P()), call=call + " params")


@pytest.mark.exercise("data_parallel_step")
def test_data_parallel_step_splits_the_batch(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    params, batch = mlp_problem(rng, batch_size=16)
    seen = []

    def loss_noting_shardings(params, batch):
        seen.append(jax.typeof(batch[0]).sharding)  # the layout JAX traces the loss with
        return mlp_loss(params, batch)

    submission.data_parallel_step(loss_noting_shardings, params, batch, mesh, 0.1)
    if not seen:
        checks.fail("data_parallel_step never called loss_fn.")
    split = [s for s in seen if getattr(s, "spec", P()) and s.spec[0] == "data" and dict(s.mesh.shape) == {"data": 8}]
    if not split:
        checks.fail(f"loss_fn saw the batch laid out as {seen[0]}, not split over the mesh axis 'data': "
                    "shard the batch with NamedSharding(mesh, P('data')).")


@pytest.mark.exercise("shard_map_value_and_grad")
def test_shard_map_value_and_grad_equals_the_whole_batch_gradient(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    params, batch = mlp_problem(rng)
    loss, grads = submission.shard_map_value_and_grad(mlp_loss, params, batch, mesh)
    expected_loss, expected_grads = jax.jit(jax.value_and_grad(mlp_loss))(params, batch)
    call = "shard_map_value_and_grad(mlp_loss, params, batch of 32, mesh of 8)"
    checks.assert_close(loss, expected_loss, call=call + " loss", rtol=1e-5, atol=1e-6)
    checks.assert_close(grads, expected_grads, call=call + " grads", rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("shard_map_value_and_grad")
def test_shard_map_value_and_grad_uses_shard_map_and_a_collective(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    params, batch = mlp_problem(rng, batch_size=16)
    jaxpr = str(jax.make_jaxpr(submission.shard_map_value_and_grad, static_argnums=(0, 3))(
        mlp_loss, params, batch, mesh))
    if "shard_map" not in jaxpr:
        checks.fail("shard_map_value_and_grad does not use jax.shard_map (none in its jaxpr).")
    if "psum" not in jaxpr:
        checks.fail("shard_map_value_and_grad calls no collective: average the devices' losses with jax.lax.pmean.")
    got = jax.jit(submission.shard_map_value_and_grad, static_argnums=(0, 3))(mlp_loss, params, batch, mesh)
    expected = jax.jit(jax.value_and_grad(mlp_loss))(params, batch)
    checks.assert_close(got, expected, call="jit(shard_map_value_and_grad)", rtol=1e-4, atol=1e-6)
