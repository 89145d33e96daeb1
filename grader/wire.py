"""The messages between the grader and a sandboxed student process, and what may cross.

Grader to student: pickles (cloudpickle, so that a test's lambdas travel by value). The
student's process may unpickle what it likes: it holds nothing to protect.

Student to grader: never a pickle, which would run the student's code in the grader.
`encode` turns a result into JSON plus raw buffers; `decode` rebuilds it from plain data
only: numbers, strings, tuples, lists, dicts, NumPy arrays of numeric dtypes (JAX arrays
keep their sharding over a mesh), PRNG keys, and `ObjectRecord`s for anything else (a
student's class, a function), which stay in the student's process and are named by id.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_MESSAGE = 1 << 30  # bytes; a bigger answer is an attack or a bug
MAX_HEADER = 64 << 20
_LENGTH = struct.Struct("!Q")
_NUMERIC_KINDS = set("biufc")
_EXTRA_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e5m2", "int4", "uint4"}
KEY_IMPLS = {"threefry2x32", "rbg", "unsafe_rbg"}


class ProtocolError(Exception):
    """A message from the student's process is malformed: it is treated as a crash."""


# --- framing --------------------------------------------------------------------------------


def send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def receive(sock: socket.socket) -> bytes:
    """One message; raises EOFError when the other side is gone."""
    (length,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size))
    if length > MAX_MESSAGE:
        raise ProtocolError(f"a message of {length} bytes")
    return _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other process closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- student -> grader ------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRecord:
    """Something that stays in the student's process: its id there, its type, and its leaves if it is a pytree."""

    id: int
    type_name: str
    callable: bool
    leaves: tuple[tuple[str, Any], ...] | None  # (jax key path, decoded leaf); None if not a pytree


def encode(value: Any, keep: Any) -> bytes:
    """`value` as JSON and buffers; `keep(obj) -> id` stores what cannot cross (in the student's process)."""
    blobs: list[bytes] = []
    tree = _encode(value, keep, blobs, depth=0)
    header = json.dumps({"tree": tree, "sizes": [len(b) for b in blobs]}).encode()
    return _LENGTH.pack(len(header)) + header + b"".join(blobs)


def _encode(value: Any, keep, blobs: list[bytes], depth: int) -> Any:
    import jax

    if depth > 64:
        raise ValueError("the result is nested more than 64 levels deep")
    if value is None or type(value) in (bool, int, float, str):
        if type(value) is int and abs(value) >= 2**63:
            return {"$": "bigint", "text": str(value)}
        return value
    if type(value) is complex:
        return {"$": "complex", "re": value.real, "im": value.imag}
    if type(value) in (tuple, list):
        return {"$": type(value).__name__, "items": [_encode(v, keep, blobs, depth + 1) for v in value]}
    if type(value) is dict and all(type(k) in (str, int) for k in value):
        values = [_encode(v, keep, blobs, depth + 1) for v in value.values()]
        return {"$": "dict", "keys": list(value), "values": values}
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(value))
        return {"$": "key", "impl": impl, "data": _encode(jax.random.key_data(value), keep, blobs, depth + 1)}
    if isinstance(value, np.ndarray | np.generic | jax.Array) and _crossable_dtype(np.dtype(value.dtype)):
        array = np.asarray(value, order="C")
        blobs.append(array.tobytes())
        return {"$": "array", "dtype": array.dtype.name, "shape": list(array.shape), "blob": len(blobs) - 1,
                "scalar": isinstance(value, np.generic), "sharding": _sharding_of(value)}
    leaves = None
    flat, _ = jax.tree_util.tree_flatten_with_path(value)
    if not (len(flat) == 1 and flat[0][1] is value):  # a pytree node (equinox module, NamedTuple, ...)
        leaves = [[jax.tree_util.keystr(path), _encode(leaf, keep, blobs, depth + 1)] for path, leaf in flat]
    kind = type(value)
    return {"$": "object", "id": keep(value), "type": f"{kind.__module__}.{kind.__qualname__}"[:200],
            "callable": callable(value), "leaves": leaves}


def _crossable_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in _NUMERIC_KINDS or dtype.name in _EXTRA_DTYPES


def _sharding_of(value: Any) -> dict | None:
    import jax

    sharding = getattr(value, "sharding", None)
    if not isinstance(value, jax.Array) or not isinstance(sharding, jax.sharding.NamedSharding):
        return None
    spec = [list(p) if isinstance(p, tuple) else p for p in sharding.spec]
    return {**mesh_description(sharding.mesh), "spec": spec}


def mesh_description(mesh: Any) -> dict:
    """A mesh as plain data: `mesh_on_devices(**mesh_description(mesh))` makes it again in another process."""
    return {"axis_names": [str(n) for n in mesh.axis_names], "shape": [int(n) for n in mesh.devices.shape],
            "device_ids": [int(d.id) for d in mesh.devices.flat], "axis_types": [t.name for t in mesh.axis_types]}


def mesh_on_devices(axis_names: list, shape: list, device_ids: list, axis_types: list) -> Any:
    """The mesh that `mesh_description` describes, over this process's devices with those ids."""
    import jax

    devices = {d.id: d for d in jax.devices()}
    ids = [int(i) for i in device_ids]
    shape, names = tuple(int(n) for n in shape), tuple(str(n) for n in axis_names)
    if any(i not in devices for i in ids) or len(ids) != int(np.prod(shape)) or len(names) != len(shape):
        raise ProtocolError("a mesh over devices this process does not have")
    if len(list(axis_types)) != len(shape) or any(str(t) not in jax.sharding.AxisType.__members__
                                                   for t in axis_types):
        raise ProtocolError("bad mesh axis types")
    types = tuple(jax.sharding.AxisType[str(t)] for t in list(axis_types))
    return jax.sharding.Mesh(np.array([devices[i] for i in ids], dtype=object).reshape(shape), names,
                             axis_types=types)


def decode(payload: bytes, make_object) -> Any:
    """Rebuild an encoded value from plain data; `make_object(record)` stands in for what stayed behind."""
    try:
        (length,) = _LENGTH.unpack_from(payload)
        if length > MAX_HEADER or length + _LENGTH.size > len(payload):
            raise ProtocolError("bad header length")
        header = json.loads(payload[_LENGTH.size:_LENGTH.size + length])
        sizes = [int(s) for s in header["sizes"]]
        offsets, position = [], _LENGTH.size + length
        for size in sizes:
            offsets.append((position, position + size))
            position += size
        if position != len(payload):
            raise ProtocolError("the buffers do not add up")
        return _decode(header["tree"], memoryview(payload), offsets, make_object, 0)
    except ProtocolError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, RecursionError, OverflowError) as error:
        raise ProtocolError(f"{type(error).__name__}: {error}") from None


def _decode(node: Any, payload: memoryview, offsets, make_object, depth: int) -> Any:
    if depth > 66:
        raise ProtocolError("nested too deep")
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is list:
        raise ProtocolError("a bare list")
    if type(node) is not dict:
        raise ProtocolError(f"unexpected {type(node).__name__}")
    kind = node["$"]
    again = lambda n: _decode(n, payload, offsets, make_object, depth + 1)  # noqa: E731
    if kind == "bigint":
        return int(str(node["text"])[:200])
    if kind == "complex":
        return complex(float(node["re"]), float(node["im"]))
    if kind in ("tuple", "list"):
        items = [again(n) for n in node["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        keys = node["keys"]
        if not all(type(k) in (str, int) for k in keys):
            raise ProtocolError("dict keys must be str or int")
        return dict(zip(keys, [again(n) for n in node["values"]], strict=True))
    if kind == "array":
        return _decode_array(node, payload, offsets)
    if kind == "key":
        import jax

        impl = str(node["impl"])
        if impl not in KEY_IMPLS:
            raise ProtocolError(f"unknown PRNG implementation {impl[:40]!r}")
        return jax.random.wrap_key_data(np.asarray(again(node["data"])), impl=impl)
    if kind == "object":
        leaves = node["leaves"]
        decoded = None if leaves is None else tuple((str(path), again(leaf)) for path, leaf in leaves)
        return make_object(ObjectRecord(int(node["id"]), str(node["type"])[:200], bool(node["callable"]), decoded))
    raise ProtocolError(f"unknown node {str(kind)[:40]!r}")


def _decode_array(node: dict, payload: memoryview, offsets) -> Any:
    name = str(node["dtype"])
    dtype = _dtype_named(name)
    shape = tuple(int(n) for n in node["shape"])
    if any(n < 0 for n in shape):
        raise ProtocolError("negative dimension")
    start, end = offsets[int(node["blob"])]
    if end - start != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise ProtocolError("array size does not match its shape")
    array = np.frombuffer(payload[start:end], dtype=dtype).reshape(shape).copy()
    if node.get("scalar"):
        return array[()]
    if node.get("sharding"):
        return _with_sharding(array, node["sharding"])
    return array


def _dtype_named(name: str) -> np.dtype:
    if name in _EXTRA_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    dtype = np.dtype(name)
    if dtype.kind not in _NUMERIC_KINDS:
        raise ProtocolError(f"dtype {name[:40]!r} may not cross")
    return dtype


def _with_sharding(array: np.ndarray, sharding: dict) -> Any:
    """The array on this process's devices, laid out as it was in the student's process."""
    import jax

    mesh = mesh_on_devices(sharding["axis_names"], sharding["shape"], sharding["device_ids"],
                           sharding["axis_types"])
    spec = []
    for entry in sharding["spec"]:
        if entry is None or type(entry) is str:
            spec.append(entry)
        elif type(entry) is list and all(type(e) is str for e in entry):
            spec.append(tuple(entry))
        else:
            raise ProtocolError("bad partition spec")
    try:
        return jax.device_put(array, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec)))
    except ValueError as error:  # e.g. a dimension that does not divide over the mesh
        raise ProtocolError(f"bad sharding: {error}") from None
