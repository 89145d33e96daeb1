"""What may cross from a student's process to the grader (`grader.wire`), and what crosses back."""

import json
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from grader import remote, wire


def round_trip(value):
    kept = []
    return wire.decode(wire.encode(value, lambda obj: kept.append(obj) or len(kept) - 1), lambda record: record)


def mesh_of(shape, names, axis_types):
    return jax.make_mesh(shape, names, axis_types, devices=jax.devices("cpu")[:int(np.prod(shape))])


def forged(tree, blobs=()):
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in blobs]}).encode()
    return len(header).to_bytes(8, "big") + header + b"".join(blobs)


def test_arrays_keys_and_containers_come_back_as_they_were():
    value = {"x": np.arange(6.0).reshape(2, 3), "pair": (1, [2.5, "a"]), "big": 2**70, "z": 1 + 2j,
             "key": jax.random.key(3), "scalar": np.float32(1.5)}
    back = round_trip(value)
    np.testing.assert_array_equal(back["x"], value["x"])
    assert back["pair"] == (1, [2.5, "a"]) and back["big"] == 2**70 and back["z"] == 1 + 2j
    assert back["scalar"] == np.float32(1.5) and isinstance(back["scalar"], np.generic)
    np.testing.assert_array_equal(jax.random.key_data(back["key"]), jax.random.key_data(value["key"]))


def test_a_sharded_array_keeps_its_mesh_axis_names_and_axis_types():
    mesh = mesh_of((2, 4), ("model", "data"), (AxisType.Explicit, AxisType.Auto))
    x = jax.device_put(jnp.arange(32.0).reshape(8, 4), NamedSharding(mesh, P("data", "model")))
    back = round_trip(x)
    np.testing.assert_array_equal(back, x)
    assert back.sharding.spec == x.sharding.spec
    assert back.sharding.mesh.axis_names == ("model", "data")
    assert back.sharding.mesh.axis_types == (AxisType.Explicit, AxisType.Auto)
    assert [d.id for d in back.sharding.mesh.devices.flat] == [d.id for d in mesh.devices.flat]


def test_a_mesh_in_a_request_is_the_same_mesh_in_the_students_process():
    mesh = mesh_of((2, 2), ("a", "b"), (AxisType.Explicit, AxisType.Explicit))
    again = pickle.loads(remote._dumps({"mesh": mesh}, process=None))["mesh"]
    assert again == mesh and again.axis_types == mesh.axis_types


def test_anything_else_stays_behind_as_a_record():
    record = round_trip(lambda x: x)
    assert isinstance(record, wire.ObjectRecord) and record.callable and record.type_name == "builtins.function"


@pytest.mark.parametrize("tree, blobs, says", [
    ({"$": "array", "dtype": "object", "shape": [1], "blob": 0}, [b"12345678"], "may not cross"),
    ({"$": "array", "dtype": "float32", "shape": [-1], "blob": 0}, [b"1234"], "negative"),
    ({"$": "array", "dtype": "float32", "shape": [3], "blob": 0}, [b"1234"], "does not match"),
    ({"$": "key", "impl": "os.system", "data": None}, [], "unknown PRNG"),
    ({"$": "pickle", "data": "x"}, [], "unknown node"),
    ([1, 2], [], "bare list"),
    ({"$": "array", "dtype": "float32", "shape": [2], "blob": 0, "sharding": {
        "axis_names": ["x"], "shape": [2], "device_ids": [0, 99], "axis_types": ["Auto"], "spec": ["x"]}},
     [b"12345678"], "devices this process does not have"),
    ({"$": "array", "dtype": "float32", "shape": [2], "blob": 0, "sharding": {
        "axis_names": ["x"], "shape": [2], "device_ids": [0, 1], "axis_types": ["__class__"], "spec": ["x"]}},
     [b"12345678"], "axis types"),
])
def test_a_malformed_answer_is_a_protocol_error_not_a_crash_of_the_grader(tree, blobs, says):
    with pytest.raises(wire.ProtocolError, match=says):
        wire.decode(forged(tree, blobs), lambda record: record)
