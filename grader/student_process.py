"""The student's side of grading: inside the sandbox, run what the trusted grader asks for.

The process (forked by `grader.zygote`, sandboxed by `grader.namespaces`) first loads one
student script, with the answers of the script's *other* exercises filled in from the
reference (which arrives as code: that exercise's own answer never does). Then it serves
requests: `describe` a name, or `evaluate` a function that a hidden test sent (a lambda
of the test's, pickled by value) on arguments the test chose. Results go back as plain
data (`grader.wire`); the test compares them in the grader's own process.

Inside a test's function, `submission` is the student's namespace and `reference` the
reference's other exercises, by the stand-ins below (`grader.remote` pickles them so).
"""

from __future__ import annotations

import pickle
import socket
import traceback
from pathlib import Path
from typing import Any

from grader import compile_time, failures, wire
from grader.loader import load_cells
from grader.percent import Cell
from grader.submissions import Namespace

# Global settings a submission may switch (jax_enable_x64, say): put back before every request,
# so that right code is graded as the course runs it and the filled-in answers keep working.
JAX_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
                "jax_numpy_dtype_promotion", "jax_debug_nans", "jax_debug_infs", "jax_disable_jit",
                "jax_default_prng_impl", "jax_enable_checks")


class _State:
    submission: Namespace | None = None
    reference: Namespace | None = None
    objects: dict[int, Any] = {}
    settings: dict[str, Any] = {}


class ReferenceOfOtherExercises(Namespace):
    """The reference as the sandbox holds it: every exercise but the one being graded (none, for a whole script)."""

    def __init__(self, values, graded: str | None, withheld: set[str]):
        super().__init__(values, "the reference")
        self._graded, self._withheld = graded, withheld

    def __getattr__(self, name: str) -> Any:
        if name in self._withheld:
            graded = f"the exercise being graded ({self._graded})" if self._graded else "an exercise"
            raise RuntimeError(f"A hidden test asked the sandbox for the reference's `{name}`, the answer to "
                               f"{graded}; compute it outside submission.evaluate.")
        return super().__getattr__(name)


# --- what the grader's pickles refer to ---------------------------------------------------------


def current_submission() -> Namespace:
    return _State.submission


def current_reference() -> Namespace:
    return _State.reference


def submission_attribute(name: str) -> Any:
    return getattr(_State.submission, name)


def reference_attribute(name: str) -> Any:
    return getattr(_State.reference, name)


def kept_object(object_id: int) -> Any:
    return _State.objects[object_id]


# --- requests -----------------------------------------------------------------------------------


def _keep(value: Any) -> int:
    object_id = len(_State.objects) + 1
    _State.objects[object_id] = value
    return object_id


def _restore_settings() -> None:
    import jax

    for name, value in _State.settings.items():
        if getattr(jax.config, name) != value:
            jax.config.update(name, value)


def _load(request: dict) -> dict:
    """Load the reference's other exercises, then the student's script with them filled in."""
    import jax

    _State.settings = {name: getattr(jax.config, name) for name in JAX_SETTINGS if hasattr(jax.config, name)}
    reference = load_cells([Cell(*c) for c in request["reference"]], Path("reference") / request["label"])
    if reference.problems and request["exercise"] is not None:  # without any exercise, a cell may not load
        raise RuntimeError(f"the reference did not load: {reference.problems}")
    values = reference.module.__dict__
    overrides = {name: values[name] for name in request["filled"]}
    _State.reference = ReferenceOfOtherExercises(values, request["exercise"], set(request["withheld"]))
    student = load_cells([Cell(*c) for c in request["cells"]], Path(request["label"]), overrides=overrides)
    _State.submission = Namespace.of_script(student)
    _restore_settings()
    return {"problems": student.problems}


def _describe(request: dict) -> dict:
    value = getattr(_State.submission, request["name"])
    return {"callable": True} if callable(value) else {"callable": False, "value": value}


def _evaluate(request: dict) -> Any:
    _restore_settings()
    return request["fn"](*request["args"], **request["kwargs"])


HANDLERS = {"load": _load, "describe": _describe, "evaluate": _evaluate}


def _error(error: BaseException) -> dict:
    failure = failures.describe(error)
    details = failures.clipped("".join(traceback.format_exception(error)), 20_000)
    return {"short": failure.short, "todo": failure.todo, "typename": failure.typename, "details": details}


def serve(channel: socket.socket) -> None:
    """Answer the grader's requests until it closes the channel."""
    while True:
        try:
            request = pickle.loads(wire.receive(channel))
        except EOFError:
            return
        compiled_before = compile_time.seconds()
        try:
            reply = {"ok": HANDLERS[request["op"]](request)}
        except BaseException as error:  # noqa: B036 -- a SystemExit from student code is a failure like any
            reply = {"error": _error(error)}
        reply["compiled_s"] = float(compile_time.seconds() - compiled_before)
        try:
            payload = wire.encode(reply, _keep)
        except BaseException as error:  # noqa: B036 -- e.g. an answer nested too deep
            payload = wire.encode({"error": _error(error)}, _keep)
        wire.send(channel, payload)
