"""Checks on a student's answer, with messages a student understands.

Every check raises `CheckFailed` (an `AssertionError`) whose message names the call,
says what was expected, and shows "yours vs expected" at the first differing entries.
This is the one place that talks to chex, so it can be swapped out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from grader.failures import CheckFailed

MAX_SHOWN = 5


def fail(message: str) -> None:
    __tracebackhide__ = True
    raise CheckFailed(message)


def _describe(x: Any) -> str:
    if _is_remote_object(x):
        return f"a {x.type_name}"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


def _format_index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def assert_close(got: Any, expected: Any, *, call: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """`got` equals `expected` (arrays or pytrees of arrays) to tolerance, leaf by leaf."""
    __tracebackhide__ = True
    got_leaves, expected_leaves = keyed_leaves(got), keyed_leaves(expected)
    if _has_remote_objects(got):  # the student's own classes: compare the leaves' key paths
        same = [path for path, _ in got_leaves] == [path for path, _ in expected_leaves]
    else:
        same = jax.tree.structure(got) == jax.tree.structure(expected)
    if not same:
        fail(f"{call} returned {_describe_tree(got)}, expected {_describe_tree(expected)}.")
    for (path, g), (_, e) in zip(got_leaves, expected_leaves, strict=True):
        _assert_array_close(g, e, where=call + path, rtol=rtol, atol=atol)


def _is_remote_object(x: Any) -> bool:
    """An object a student's function returned that stayed in its sandboxed process (`grader.remote`)."""
    return isinstance(getattr(type(x), "leaves", None), property) and hasattr(type(x), "type_name")


def _has_remote_objects(x: Any) -> bool:
    return any(_is_remote_object(leaf) for leaf in jax.tree.leaves(x))


def keyed_leaves(x: Any) -> list[tuple[str, Any]]:
    """`(key path, leaf)` for every leaf; an object left in the student's process counts by its own leaves."""
    found = []
    for path, leaf in jax.tree.flatten_with_path(x)[0]:
        prefix = jax.tree_util.keystr(path)
        if _is_remote_object(leaf) and leaf.leaves is not None:
            found += [(prefix + inner, value) for inner, value in leaf.leaves]
        else:
            found.append((prefix, leaf))
    return found


def _describe_tree(x: Any) -> str:
    leaves, treedef = jax.tree.flatten(x)
    if _is_remote_object(x):
        inner = ", ".join(f"{path}: {_describe(leaf)}" for path, leaf in keyed_leaves(x))
        return f"a {x.type_name} with leaves ({inner})"
    if treedef.num_leaves == 1 and treedef.num_nodes == 1:
        return _describe(leaves[0])
    return f"{treedef} with leaves ({', '.join(_describe(leaf) for leaf in leaves)})"


def _assert_array_close(got: Any, expected: Any, *, where: str, rtol: float, atol: float) -> None:
    __tracebackhide__ = True
    expected = np.asarray(expected)
    if not hasattr(got, "shape"):
        fail(f"{where} returned a {type(got).__name__}, expected an {_describe(expected)}.")
    if tuple(got.shape) != expected.shape:
        fail(f"{where} returned shape {tuple(got.shape)}, expected {expected.shape}.")
    if jnp.dtype(got.dtype) != expected.dtype:
        fail(f"{where} returned dtype {got.dtype}, expected {expected.dtype}.")
    got = np.asarray(got)
    if np.issubdtype(expected.dtype, np.inexact):
        bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=False)
    else:
        bad = got != expected
    if not bad.any():
        return
    if got.ndim == 0:
        fail(f"{where}: yours {got.item()!r}, expected {expected.item()!r}.")
    lines = [f"{where}: {int(bad.sum())} of {bad.size} entries differ from what was expected."]
    for index in list(zip(*np.nonzero(bad), strict=True))[:MAX_SHOWN]:
        index = tuple(int(i) for i in index)
        lines.append(f"  at {_format_index(index)}: yours {got[index].item()!r}, expected {expected[index].item()!r}")
    fail("\n".join(lines))


def assert_shape(x: Any, shape: tuple[int | None, ...], *, call: str) -> None:
    """`x` is an array of the given shape (`None` matches any size)."""
    __tracebackhide__ = True
    try:
        chex.assert_shape(x, shape)
    except AssertionError:
        wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        fail(f"{call} returned {_describe(x)}, expected shape {wanted}.")


def assert_finite(x: Any, *, call: str) -> None:
    """No NaN or infinity anywhere in `x`."""
    __tracebackhide__ = True
    try:
        chex.assert_tree_all_finite([leaf for _, leaf in keyed_leaves(x)])
    except AssertionError:
        fail(f"{call} returned NaN or infinite values; look for a division by zero, "
             "a log of 0 or a sqrt of a negative number.")


def jitted(fn: Callable, *args: Any, call: str, static_argnums: tuple[int, ...] = ()) -> Any:
    """`jax.jit(fn)(*args)`, failing with a hint when `fn` cannot be traced."""
    __tracebackhide__ = True
    try:
        return jax.jit(fn, static_argnums=static_argnums)(*args)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
            jax.errors.TracerIntegerConversionError, jax.errors.TracerArrayConversionError) as error:
        first_line = str(error).strip().splitlines()[0]
        fail(f"{call} does not work under jax.jit: {first_line}\n"
             "Hint: inside jit, values are tracers. Use jnp.where instead of Python `if` on "
             "arrays, and jnp functions instead of float()/int()/np.*.")


def assert_no_key_reuse(fn: Callable, *args: Any, call: str) -> Any:
    """Run `fn(*args)` with JAX's key-reuse checker on; returns its result."""
    __tracebackhide__ = True
    try:
        with jax.debug_key_reuse(True):
            return fn(*args)
    except jax.errors.KeyReuseError as error:
        first_line = str(error).strip().splitlines()[0]
        fail(f"{call} uses a PRNG key twice ({first_line}).\n"
             "Hint: split a key with jax.random.split and use each new key exactly once.")


def assert_different(a: Any, b: Any, *, call: str, why: str) -> None:
    """`a` and `b` are finite and differ somewhere (e.g. results for two different keys)."""
    __tracebackhide__ = True
    assert_finite(a, call=call)
    assert_finite(b, call=call)
    pairs = zip(keyed_leaves(a), keyed_leaves(b), strict=True)
    if all(np.array_equal(x, y) for (_, x), (_, y) in pairs):
        fail(f"{call}: {why}")


def _describe_sharding(sharding: Any) -> str:
    if isinstance(sharding, jax.sharding.NamedSharding):
        axes = ", ".join(f"{name!r}: {size}" for name, size in sharding.mesh.shape.items())
        return f"{sharding.spec} on a mesh {{{axes}}}"
    devices = len(sharding.device_set)
    return f"a {type(sharding).__name__} on {devices} device" + ("" if devices == 1 else "s")


def assert_sharding(got: Any, expected: jax.sharding.Sharding, *, call: str) -> None:
    """Every leaf of `got` is a `jax.Array` laid out over the devices as `expected` says."""
    __tracebackhide__ = True
    for path, leaf in jax.tree.flatten_with_path(got)[0]:
        where = call + jax.tree_util.keystr(path)
        if not isinstance(leaf, jax.Array):
            fail(f"{where} is a {type(leaf).__name__}, "
                 f"expected a jax.Array laid out as {_describe_sharding(expected)}.")
        if not leaf.sharding.is_equivalent_to(expected, leaf.ndim):
            fail(f"{where} is laid out as {_describe_sharding(leaf.sharding)}, "
                 f"expected {_describe_sharding(expected)}.")


def assert_max_traces(fn: Callable, n: int) -> Callable:
    """Wrap `fn` so that tracing it (under `jax.jit`) more than `n` times fails: it recompiles.

    (chex's counter needs the wrapped function's source file, which a sandbox does not have.)
    """
    traces = 0

    @functools.wraps(fn)
    def counted(*args, **kwargs):
        __tracebackhide__ = True
        nonlocal traces
        traces += 1
        if traces > n:
            fail(f"{getattr(fn, '__name__', 'the function')} was traced {traces} times, at most {n} expected: "
                 "it recompiles on every call (a Python value that changes, or a shape that does?).")
        return fn(*args, **kwargs)

    return counted
