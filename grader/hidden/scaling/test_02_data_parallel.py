"""Hidden tests for 02_data_parallel.py: the student's functions against the reference, on simulated devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from grader import checks
from grader.inputs import normals


def softplus_loss(params, batch):
    """A mean over the examples, with a pytree of parameters (a list of a dict and an array)."""
    x, labels = batch["x"], batch["labels"]
    logits = x @ params[0]["w"] + params[0]["b"]
    return jnp.mean(jax.nn.softplus(-labels * (jnp.tanh(logits) @ params[1])))


def described(sharding):
    """(partition spec, mesh shape, text) of a sharding, as plain data that can leave the sandbox."""
    if not hasattr(sharding, "spec"):
        return (), {}, str(sharding)
    return tuple(sharding.spec), dict(sharding.mesh.shape), str(sharding)


def problem(rng, batch_size):
    params = [{"w": 0.5 * normals(rng, 4, 3), "b": normals(rng, 3)}, normals(rng, 3)]
    batch = {"x": normals(rng, batch_size, 4), "labels": np.sign(normals(rng, batch_size))}
    return params, batch


@pytest.mark.exercise("data_parallel_step")
@pytest.mark.points(2)
@pytest.mark.parametrize("devices", [8, 4])
def test_data_parallel_step_matches_reference(submission, reference, rng, cpu_mesh, devices):
    mesh = cpu_mesh((devices,), ("data",))
    params, batch = problem(rng, 8 * devices)
    learning_rate = np.float32(rng.uniform(0.05, 0.5))

    def step_from_one_device():
        on_one_device = jax.device_put(params, jax.devices("cpu")[0])
        return submission.data_parallel_step(softplus_loss, on_one_device, batch, mesh, learning_rate)

    got_params, got_loss = submission.evaluate(step_from_one_device)
    expected_params, expected_loss = reference.data_parallel_step(softplus_loss, params, batch, mesh, learning_rate)
    call = f"data_parallel_step(loss, params, batch of {8 * devices}, mesh of {devices}, {learning_rate:.3f})"
    checks.assert_close(got_loss, expected_loss, call=call + " loss", rtol=1e-5, atol=1e-6)
    checks.assert_close(got_params, expected_params, call=call + " params", rtol=1e-5, atol=1e-6)
    checks.assert_sharding(got_params, NamedSharding(mesh, P()), call=call + " params")


@pytest.mark.exercise("data_parallel_step")
@pytest.mark.points(1)
def test_data_parallel_step_traces_the_loss_with_a_split_batch(submission, rng, cpu_mesh):
    mesh = cpu_mesh((4,), ("data",))
    params, batch = problem(rng, 8)

    def shardings_seen():  # the batch's, each time loss_fn was traced
        seen = []

        def loss_noting_shardings(params, batch):
            seen.append(jax.typeof(batch["x"]).sharding)
            return softplus_loss(params, batch)

        submission.data_parallel_step(loss_noting_shardings, params, batch, mesh, 0.1)
        return [described(s) for s in seen]

    seen = submission.evaluate(shardings_seen)
    split = [spec for spec, mesh_shape, _ in seen if spec and spec[0] == "data" and mesh_shape == {"data": 4}]
    if not split:
        checks.fail(f"loss_fn saw the batch laid out as {seen[0][2] if seen else 'nothing'}, "
                    "not split over the mesh axis 'data'.")


@pytest.mark.exercise("shard_map_value_and_grad")
@pytest.mark.points(2)
@pytest.mark.parametrize("devices", [8, 2])
def test_shard_map_value_and_grad_matches_reference(submission, reference, rng, cpu_mesh, devices):
    mesh = cpu_mesh((devices,), ("data",))
    params, batch = problem(rng, 4 * devices)
    got = submission.evaluate(lambda: submission.shard_map_value_and_grad(softplus_loss, params, batch, mesh))
    expected = reference.shard_map_value_and_grad(softplus_loss, params, batch, mesh)
    call = f"shard_map_value_and_grad(loss, params, batch of {4 * devices}, mesh of {devices})"
    checks.assert_close(got, expected, call=call, rtol=1e-4, atol=1e-6)


@pytest.mark.exercise("shard_map_value_and_grad")
@pytest.mark.points(1)
def test_shard_map_value_and_grad_is_a_shard_map_with_a_collective(submission, rng, cpu_mesh):
    mesh = cpu_mesh((4,), ("data",))
    params, batch = problem(rng, 8)
    jaxpr = submission.evaluate(lambda: str(jax.make_jaxpr(submission.shard_map_value_and_grad, static_argnums=(0, 3))(
        softplus_loss, params, batch, mesh)))
    if "shard_map" not in jaxpr or "psum" not in jaxpr:
        checks.fail("shard_map_value_and_grad must run the loss in jax.shard_map and average it with jax.lax.pmean.")
    got = submission.evaluate(lambda: jax.jit(submission.shard_map_value_and_grad, static_argnums=(0, 3))(
        softplus_loss, params, batch, mesh))
    checks.assert_close(got, jax.jit(jax.value_and_grad(softplus_loss))(params, batch),
                        call="jit(shard_map_value_and_grad)(loss, params, batch of 8, mesh of 4)", rtol=1e-4, atol=1e-6)
