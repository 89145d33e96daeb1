"""Hidden tests for 01_sharding.py: the student's functions against the reference, on simulated devices."""

import jax
import numpy as np
import pytest

from grader import checks
from grader.inputs import normals


@pytest.mark.exercise("shard_batch")
@pytest.mark.points(2)
def test_shard_batch_matches_reference(submission, reference, rng, cpu_mesh):
    mesh = cpu_mesh((2, 4), ("model", "data"))
    batch = {"x": normals(rng, 12, 3), "pair": (normals(rng, 12), normals(rng, 12, 2, 2))}
    got = submission.evaluate(lambda: submission.shard_batch(batch, mesh, "data"))
    expected = reference.shard_batch(batch, mesh, "data")
    call = "shard_batch({'x': (12, 3), 'pair': ((12,), (12, 2, 2))}, mesh model 2 x data 4, 'data')"
    checks.assert_close(got, expected, call=call, rtol=0, atol=0)
    for got_leaf, expected_leaf in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        checks.assert_sharding(got_leaf, expected_leaf.sharding, call=call)


@pytest.mark.exercise("shard_batch")
@pytest.mark.points(1)
def test_shard_batch_on_a_smaller_mesh(submission, reference, rng, cpu_mesh):
    mesh = cpu_mesh((2,), ("batch",))
    x = normals(rng, 6, 5)
    got = submission.evaluate(lambda: submission.shard_batch(x, mesh, "batch"))
    expected = reference.shard_batch(x, mesh, "batch")
    checks.assert_close(got, x, call="shard_batch(x (6, 5), mesh of 2 named 'batch', 'batch')", rtol=0, atol=0)
    checks.assert_sharding(got, expected.sharding, call="shard_batch(x (6, 5), mesh of 2, 'batch')")


@pytest.mark.exercise("sharded_matmul")
@pytest.mark.points(2)
@pytest.mark.parametrize("devices", [8, 4])
def test_sharded_matmul_matches_reference(submission, reference, rng, cpu_mesh, devices):
    mesh = cpu_mesh((devices,), ("data",))
    x, w = normals(rng, 6, 8 * devices), normals(rng, 8 * devices, 5)
    call = f"sharded_matmul(x (6, {8 * devices}), w ({8 * devices}, 5), mesh of {devices})"
    got = submission.evaluate(lambda: checks.jitted(submission.sharded_matmul, x, w, mesh,
                                                    call="jit(sharded_matmul)", static_argnums=(2,)))
    expected = jax.jit(reference.sharded_matmul, static_argnums=2)(x, w, mesh)
    checks.assert_close(got, expected, call=call, rtol=1e-4, atol=1e-5)
    checks.assert_close(got, x @ w, call=call, rtol=1e-4, atol=1e-4)
    checks.assert_sharding(got, expected.sharding, call=call)


@pytest.mark.exercise("sharded_matmul")
@pytest.mark.points(1)
def test_sharded_matmul_is_a_shard_map_with_psum(submission, rng, cpu_mesh):
    mesh = cpu_mesh((4,), ("data",))
    x, w = normals(rng, 3, 8), normals(rng, 8, 2)
    jaxpr = submission.evaluate(lambda: str(jax.make_jaxpr(submission.sharded_matmul, static_argnums=2)(
        x, w, mesh)))
    if "shard_map" not in jaxpr or "psum" not in jaxpr:
        checks.fail("sharded_matmul must compute local products in jax.shard_map and add them with jax.lax.psum.")
    got = submission.evaluate(lambda: submission.sharded_matmul(x, w, mesh))
    checks.assert_close(got, np.asarray(x) @ np.asarray(w), call="sharded_matmul(x (3, 8), w (8, 2), mesh of 4)",
                        rtol=1e-4, atol=1e-5)
