"""Visible tests for 01_sharding.py.

Run them with `uv run pytest exercises/scaling/test_01_sharding.py`
(add `--exercise shard_batch` to check a single exercise). They run on 8 simulated CPU
devices, which the course's pytest plugin asks JAX for before anything else starts it.
"""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from grader import checks


@pytest.mark.exercise("shard_batch")
def test_shard_batch_splits_the_rows_over_the_devices(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    batch = (rng.normal(size=(16, 3)).astype(np.float32), rng.normal(size=(16,)).astype(np.float32))
    got = submission.shard_batch(batch, mesh, "data")
    checks.assert_sharding(got, NamedSharding(mesh, P("data")), call="shard_batch((x (16, 3), y (16,)), mesh, 'data')")
    checks.assert_close(got, batch, call="shard_batch((x (16, 3), y (16,)), mesh, 'data')", rtol=0, atol=0)
    for position, device in enumerate(mesh.devices):
        shard = next(s for s in got[0].addressable_shards if s.device == device)
        checks.assert_close(shard.data, batch[0][2 * position : 2 * position + 2],
                            call=f"the rows of x on device {position} of the mesh", rtol=0, atol=0)


@pytest.mark.exercise("shard_batch")
@pytest.mark.parametrize("axis", ["data", "model"])
def test_shard_batch_over_one_axis_of_a_2d_mesh(submission, rng, cpu_mesh, axis):
    mesh = cpu_mesh((4, 2), ("data", "model"))
    batch = {"images": rng.normal(size=(8, 2, 2)).astype(np.float32)}
    got = submission.shard_batch(batch, mesh, axis)
    call = f"shard_batch({{'images': (8, 2, 2)}}, mesh 4 x 2, {axis!r})"
    checks.assert_sharding(got, NamedSharding(mesh, P(axis)), call=call)
    checks.assert_close(got, batch, call=call, rtol=0, atol=0)
    shard_rows = {shard.data.shape[0] for shard in got["images"].addressable_shards}
    if shard_rows != {8 // mesh.shape[axis]}:
        checks.fail(f"{call}: each device holds {shard_rows} rows, expected {8 // mesh.shape[axis]}.")


def _uses_shard_map_and_psum(fn, *args, name: str) -> None:
    jaxpr = str(jax.make_jaxpr(fn, static_argnums=len(args) - 1)(*args))
    if "shard_map" not in jaxpr:
        checks.fail(f"{name} does not use jax.shard_map (none in its jaxpr).")
    if "psum" not in jaxpr:
        checks.fail(f"{name} calls no psum inside its shard_map: sum the devices' products with jax.lax.psum.")


@pytest.mark.exercise("sharded_matmul")
def test_sharded_matmul_equals_the_product(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    x, w = rng.normal(size=(5, 32)).astype(np.float32), rng.normal(size=(32, 3)).astype(np.float32)
    got = submission.sharded_matmul(x, w, mesh)
    checks.assert_close(got, x @ w, call="sharded_matmul(x (5, 32), w (32, 3), mesh)", rtol=1e-5, atol=1e-5)
    checks.assert_sharding(got, NamedSharding(mesh, P()), call="sharded_matmul(x, w, mesh)")


@pytest.mark.exercise("sharded_matmul")
def test_sharded_matmul_uses_shard_map_and_psum_under_jit(submission, rng, cpu_mesh):
    mesh = cpu_mesh((8,), ("data",))
    x, w = rng.normal(size=(2, 16)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32)
    _uses_shard_map_and_psum(submission.sharded_matmul, x, w, mesh, name="sharded_matmul")
    got = checks.jitted(submission.sharded_matmul, x, w, mesh, call="jit(sharded_matmul)", static_argnums=(2,))
    checks.assert_close(got, x @ w, call="jit(sharded_matmul)(x (2, 16), w (16, 4), mesh)", rtol=1e-5, atol=1e-5)
