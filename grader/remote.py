"""The grader's side of a sandboxed submission: hidden tests call the student's code through proxies.

In a hidden test, `submission` is a `RemoteSubmission`. `submission.forward_noise(...)`
runs the student's function in its sandboxed process on the test's arguments and brings
back the result as plain data; `submission.evaluate(fn, ...)` runs a function of the
test's there (a lambda that jits, vmaps or differentiates the student's code, say), in
which `submission` is the student's namespace. The comparison with the reference, the
reference itself and pytest's report stay in this process: nothing the student's code
does can change them.

One sandboxed process serves the tests of one exercise, with the reference's answers to
the script's other exercises filled in; it is started on first use and stopped when the
tests move on to another exercise. A process that crashes or runs out of time fails the
test it was in, and every later test of the same exercise, with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import select
import socket
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

from grader import failures, namespaces, paths, percent, student_process, submissions, wire
from grader.failures import CheckFailed

START_TIMEOUT_S = 60.0  # to fork, enter the sandbox and load the script


class SubmissionStopped(CheckFailed):
    """The student's process crashed, exited or ran out of time; the message says which."""


class SandboxRefused(RuntimeError):
    """This machine cannot sandbox student code, and grading for credit was asked for."""


@dataclass(frozen=True)
class Limits:
    per_test_s: float = 120.0  # a test running longer is taken to be an endless loop
    total_s: float = 900.0  # for all the tests of one submission
    memory_mb: int = 4096  # address space of the student's process


# --- the fork server ------------------------------------------------------------------------------


def preloaded_modules(tracks: list[str]) -> list[str]:
    """What the fork servers import: the libraries the tests use and the course scripts import."""
    modules = {"jax", "jax.numpy", "numpy", "equinox", "optax", "chex", "diffrax", "matplotlib", "course",
               "grader.checks", "grader.inputs", "grader.student_process", "grader.wire", "cloudpickle"}
    for track in tracks:
        for script in paths.course_scripts(track):
            modules |= percent.imported_modules(script.read_text(encoding="utf-8"))
    return sorted(modules)


# Student code is compiled afresh in every sandbox (no compilation cache there): XLA's CPU
# backend without LLVM's optimisations compiles the hidden tests' programs in 0.57 of the time
# (benchmarks/grading_speed.py), and they still run in well under a second each.
SANDBOX_XLA_FLAGS = "--xla_backend_optimization_level=0"


def child_environment() -> dict[str, str]:
    """The environment of the zygote and every sandboxed process: no secrets, one BLAS thread."""
    kept = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL") if name in os.environ}
    kept["XLA_FLAGS"] = f"{SANDBOX_XLA_FLAGS} {os.environ.get('XLA_FLAGS', '')}".strip()
    return {**kept, "HOME": "/tmp", "TMPDIR": "/tmp", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "Agg", "COURSE_QUICK": "1", "PYTHONDONTWRITEBYTECODE": "1", "EQX_ON_ERROR": "nan",
            "JAX_PLATFORMS": "cpu", "GRADER_SHOW_STUDENT_OUTPUT": os.environ.get("GRADER_SHOW_STUDENT_OUTPUT", "")}


class Zygote:
    """This process's fork server (`grader.zygote`): started once, it forks a sandboxed process per request."""

    def __init__(self, modules: list[str], *, read_only_cache: Path | None = None):
        self._lock = threading.Lock()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = child_environment()
        if read_only_cache is not None:
            env["GRADER_READ_ONLY_CACHE"] = str(read_only_cache)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.zygote", str(theirs.fileno()), *modules], pass_fds=(theirs.fileno(),),
            env=env, cwd="/", stdin=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self._control = mine
        ready, _, _ = select.select([mine], [], [], 300)
        if not ready or mine.recv(64) != b"ready":
            self.close()
            raise RuntimeError("the grader's fork server did not start (see the messages above)")

    def spawn(self, policy: namespaces.Policy) -> tuple[int, socket.socket]:
        """A new sandboxed process: its supervisor's pid, and a channel to it."""
        with self._lock:
            self._control.send(pickle.dumps({"op": "spawn", "policy": policy}))
            message, fds, _, _ = socket.recv_fds(self._control, 1 << 16, 1)
        if not fds:
            raise RuntimeError("the grader's fork server stopped")
        return pickle.loads(message)["pid"], socket.socket(fileno=fds[0])

    def _ask(self, request: dict) -> dict:
        with self._lock:
            self._control.send(pickle.dumps(request))
            return pickle.loads(self._control.recv(1 << 16))

    def probe(self, policy: namespaces.Policy) -> str | None:
        """None if a sandbox with this policy can be made here, else what the machine lacks."""
        return self._ask({"op": "probe", "policy": policy})["missing"]

    def kill(self, pid: int) -> None:
        self._ask({"op": "kill", "pid": pid})

    def exit_status(self, pid: int, timeout: float = 10.0) -> int | None:
        """The exit status of a supervisor (128 + N: its sandboxed process was killed by signal N)."""
        return self._ask({"op": "status", "pid": pid, "timeout": timeout})["status"]

    def close(self) -> None:
        self._control.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- one student process -----------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """A student's script as the grader read it: which one, what to call it, its cells."""

    track: str
    stem: str
    label: str  # e.g. "diffusion/01_langevin.ipynb", for messages
    cells: tuple[percent.Cell, ...]


# Where a student's test calls spend their time: JAX's tracing, lowering and compiling, as the
# student's process reports it with each reply (`grader.compile_time`), and the rest.
STUDENT_COMPILING = "student code: tracing and compiling it (as its process reports)"
STUDENT_RUNNING = "student code: running it, and the round trips"


class Clock:
    """The deadlines of the current test and of the whole submission."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.submission_deadline = time.monotonic() + limits.total_s
        self.test_deadline = self.submission_deadline
        self.spent: dict[str, float] = {}  # seconds, by what they went to (for `grader grade`'s timings)

    @contextlib.contextmanager
    def timing(self, what: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(what, time.perf_counter() - start)

    def add(self, what: str, seconds: float) -> None:
        self.spent[what] = self.spent.get(what, 0.0) + seconds

    def start_test(self) -> None:
        self.test_deadline = min(time.monotonic() + self.limits.per_test_s, self.submission_deadline)

    def left(self) -> tuple[float, str]:
        """Seconds left for the current request, and what to say when they run out."""
        now = time.monotonic()
        if self.test_deadline < self.submission_deadline:
            why = f"This test ran for more than {self.limits.per_test_s:g} s (an endless loop?)."
            return min(self.test_deadline - now, 86400.0), why
        why = "The time limit for the whole submission ran out in this test."
        return min(self.submission_deadline - now, 86400.0), why


class StudentProcess:
    """One sandboxed process holding one student script, for the tests of one exercise (the
    reference fills in the others), or with `exercise` None for the tests of all of them."""

    def __init__(self, zygote: Zygote, policy: namespaces.Policy, script: Script, exercise: str | None,
                 clock: Clock):
        self.zygote, self.script, self.exercise, self.clock = zygote, script, exercise, clock
        self.stopped: str | None = None  # why it is no longer usable
        self.problems: list[str] = []
        self.compiled_s = 0.0  # what the process said its last request spent compiling
        with clock.timing("starting sandboxes"):
            self.pid, self.channel = zygote.spawn(policy)
        try:
            with clock.timing("starting sandboxes"):
                self._expect_ready()
            reference, filled, withheld = submissions.reference_for_sandbox(script.track, script.stem, exercise)
            with clock.timing("loading the scripts"):
                self.problems = self._request({
                    "op": "load", "label": script.label, "exercise": exercise, "filled": filled,
                    "withheld": withheld, "cells": [(c.first_line, c.source) for c in script.cells],
                    "reference": [(c.first_line, c.source) for c in reference]})["problems"]
        except BaseException:
            self.close()
            raise

    def _expect_ready(self) -> None:
        ready, _, _ = select.select([self.channel], [], [], START_TIMEOUT_S)
        try:
            if not ready or wire.receive(self.channel) != b"ready":
                raise EOFError
        except (EOFError, OSError, wire.ProtocolError):
            status = self.zygote.exit_status(self.pid, timeout=2)
            self._stop("The sandbox did not start.")
            raise RuntimeError(f"The sandbox for {self.script.label} did not start (exit status {status}); "
                               "run `grader sandbox` to see what this machine lacks.") from None

    # -- requests --

    def describe(self, name: str) -> dict:
        return self._request({"op": "describe", "name": name})

    def evaluate(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        self.compiled_s, start = 0.0, time.perf_counter()
        try:
            return self._request({"op": "evaluate", "fn": fn, "args": args, "kwargs": kwargs})
        finally:  # the split is only reported, never scored: the student's process could misstate it
            elapsed = time.perf_counter() - start
            compiled = min(self.compiled_s, elapsed)
            self.clock.add(STUDENT_COMPILING, compiled)
            self.clock.add(STUDENT_RUNNING, elapsed - compiled)

    def _request(self, message: dict) -> Any:
        __tracebackhide__ = True
        if self.stopped is not None:
            raise SubmissionStopped(f"Not run: the process stopped in an earlier test of this exercise.\n"
                                    f"{self.stopped}")
        payload = _dumps(message, self)
        try:
            wire.send(self.channel, payload)
            reply = self._receive()
        except (EOFError, OSError, wire.ProtocolError) as error:
            raise SubmissionStopped(self._stop(self._why_it_ended(error))) from None
        compiled = reply.get("compiled_s")
        self.compiled_s = float(compiled) if isinstance(compiled, float) and 0 <= compiled < 1e6 else 0.0
        if "error" in reply:
            error = reply["error"]
            failure = failures.Failure(error["short"], bool(error["todo"]), str(error["typename"])[:100])
            raise failures.SubmissionFailed(failure, str(error["details"]))
        return reply["ok"]

    def _receive(self) -> dict:
        left, why = self.clock.left()
        ready, _, _ = select.select([self.channel], [], [], max(left, 0))
        if not ready:
            raise SubmissionStopped(self._stop(why))
        # A slow writer cannot stall us past the deadline: read under the same timeout.
        self.channel.settimeout(max(self.clock.left()[0], 0.1))
        try:
            payload = wire.receive(self.channel)
        except TimeoutError:
            raise SubmissionStopped(self._stop(why)) from None
        finally:
            self.channel.settimeout(None)
        reply = wire.decode(payload, lambda record: RemoteObject(self, record))
        if not isinstance(reply, dict) or not ({"ok"} <= reply.keys() or {"error"} <= reply.keys()):
            raise wire.ProtocolError("not a reply")
        if "error" in reply and not _is_error_record(reply["error"]):
            raise wire.ProtocolError("not an error record")
        return reply

    def _why_it_ended(self, error: BaseException) -> str:
        if isinstance(error, wire.ProtocolError):
            return f"Your code's process sent the grader something it cannot read ({error})."
        status = self.zygote.exit_status(self.pid, timeout=2)
        if status is None:
            return "Your code closed the test process's channel to the grader during this test."
        if status > 128:
            import signal

            name = signal.Signals(status - 128).name if status - 128 in signal.valid_signals() else str(status)
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"The test process was killed by {name}{hint} during this test."
        return (f"Your code ended the test process (exit status {status}) during this test: "
                "do not call sys.exit() or os._exit() in an exercise.")

    def _stop(self, reason: str) -> str:
        """Kill the process and everything it started (its PID namespace ends with it); remember why."""
        if self.stopped is None:
            self.stopped = reason
            self.zygote.kill(self.pid)
            self.zygote.exit_status(self.pid)
            self.channel.close()
        return self.stopped

    def close(self) -> None:
        with self.clock.timing("starting sandboxes"):
            self._stop("The process was stopped.")


def _is_error_record(error: Any) -> bool:
    return (isinstance(error, dict) and isinstance(error.get("typename"), str) and isinstance(error.get("details"), str)
            and (error.get("short") is None or isinstance(error.get("short"), str)) and "todo" in error)


# --- proxies --------------------------------------------------------------------------------------


def _check_not_traced(args: tuple, kwargs: dict, what: str) -> None:
    import jax

    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs))):
        raise TypeError(f"{what} was called with traced values: a hidden test must run JAX transformations of "
                        "the student's code inside the sandbox, with submission.evaluate(lambda: ...).")


class RemoteFunction:
    """`submission.name` when it is callable: calling it runs it in the student's process."""

    def __init__(self, process: StudentProcess, name: str):
        self._process, self._name = process, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        _check_not_traced(args, kwargs, f"submission.{self._name}")
        return self._process.evaluate(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<the submission's {self._name}>"


class RemoteObject:
    """Something a student's function returned that stays in its process (its own class, a function).

    Call it, read its attributes (both run remotely), or compare its `leaves` (those of a pytree).
    """

    def __init__(self, process: StudentProcess, record: wire.ObjectRecord):
        self._process, self._record = process, record

    @property
    def type_name(self) -> str:
        return self._record.type_name.rsplit(".", 1)[-1]

    @property
    def leaves(self) -> tuple[tuple[str, Any], ...] | None:
        """(key path, value) of each leaf, when it is a pytree: `.weight`, `[0]`, ..."""
        return self._record.leaves

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        _check_not_traced(args, kwargs, f"a {self.type_name} of the submission")
        return self._process.evaluate(self, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._process.evaluate(getattr, (self, name), {})

    def __repr__(self) -> str:
        return f"<{self.type_name} in the student's process>"


class RemoteSubmission:
    """What a hidden test sees as `submission`: the student's script, run in its sandboxed process."""

    def __init__(self, process: StudentProcess):
        self._process = process

    def __getattr__(self, name: str) -> Any:
        __tracebackhide__ = True
        if name.startswith("_"):
            raise AttributeError(name)
        description = self._process.describe(name)
        return RemoteFunction(self._process, name) if description["callable"] else description["value"]

    def evaluate(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` in the student's process, where `submission` is the student's code."""
        __tracebackhide__ = True
        return self._process.evaluate(fn, args, kwargs)


# --- what crosses to the student's process ---------------------------------------------------------


class _Pickler(cloudpickle.Pickler):
    """Pickles a test's request; proxies and the reference become names the student's process resolves."""

    def __init__(self, file, process: StudentProcess):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._process = process

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, RemoteSubmission | RemoteFunction | RemoteObject):
            if obj._process is not self._process:
                raise ValueError("a hidden test passed one exercise's sandboxed objects to another's")
            if isinstance(obj, RemoteSubmission):
                return student_process.current_submission, ()
            if isinstance(obj, RemoteFunction):
                return student_process.submission_attribute, (obj._name,)
            return student_process.kept_object, (obj._record.id,)
        if isinstance(obj, submissions.Namespace) and obj.is_reference:
            return student_process.current_reference, ()
        if isinstance(obj, types.FunctionType | type) and submissions.is_reference_module(obj.__module__):
            return student_process.reference_attribute, (obj.__name__,)
        if _is_mesh(obj):  # its devices do not pickle; the sandbox has the same simulated devices
            return wire.mesh_on_devices, tuple(wire.mesh_description(obj).values())
        return super().reducer_override(obj)


def _is_mesh(obj: Any) -> bool:
    mesh_module = sys.modules.get("jax.sharding")
    return mesh_module is not None and isinstance(obj, mesh_module.Mesh)


def _dumps(message: dict, process: StudentProcess) -> bytes:
    for module in list(sys.modules.values()):  # a hidden test's own functions travel by value
        file = getattr(module, "__file__", None) or ""
        if file.startswith(str(paths.HIDDEN_TESTS)) and module.__name__ not in _BY_VALUE:
            cloudpickle.register_pickle_by_value(module)
            _BY_VALUE.add(module.__name__)
    buffer = io.BytesIO()
    _Pickler(buffer, process).dump(message)
    return buffer.getvalue()


_BY_VALUE: set[str] = set()


# --- the processes of one submission ---------------------------------------------------------------

UID_BASE = 61000  # as root, each sandboxed process runs as one of 61000-64999, unique among those alive


def refusal(missing: str) -> str:
    """Why `grader grade` will not grade for credit here, and what the instructor can do."""
    return (f"This machine cannot sandbox student code: it lacks {missing}. Grades for credit need the "
            "sandbox (run `grader sandbox` for details); `--unsafe` grades without it, with time and memory "
            "limits only, so a submission could read the reference answers or tamper with the grades.")


class Sandboxes:
    """What a grading (or pytest) process needs to run student code: the fork server and the sandbox policy.

    `unsafe`: run student code without namespaces (only time and memory limits). Otherwise,
    on a machine that cannot make the sandbox, `required` refuses (grading for credit) and
    the default carries on without it, with a warning (a maintainer running the hidden tests).
    """

    def __init__(self, limits: Limits, tracks: list[str], *, unsafe: bool = False, required: bool = False,
                 read_only_cache: Path | None = None, slot: int = 0, warn=print):
        self.limits, self.slot, self._count = limits, slot % 250, 0
        self.zygote = Zygote(preloaded_modules(tracks), read_only_cache=read_only_cache)
        extra = (str(read_only_cache),) if read_only_cache is not None else ()
        policy = namespaces.default_policy(paths.REPO_ROOT, memory_mb=limits.memory_mb, uid=None,
                                           extra_readable=extra)
        self.missing = None if unsafe else self.zygote.probe(self._with_uid(policy))
        if self.missing is not None and required:
            self.zygote.close()
            raise SandboxRefused(refusal(self.missing))
        if self.missing is not None:
            warn(f"grader: no sandbox on this machine ({self.missing}); student code runs with limits only.")
        self.isolated = not unsafe and self.missing is None
        self.policy = policy if self.isolated else dataclasses.replace(policy, isolate=False)

    def _with_uid(self, policy: namespaces.Policy) -> namespaces.Policy:
        if os.getuid() != 0:
            return policy
        self._count += 1
        return dataclasses.replace(policy, uid=UID_BASE + 16 * self.slot + self._count % 16)

    def next_policy(self) -> namespaces.Policy:
        return self._with_uid(self.policy) if self.isolated else self.policy

    def close(self) -> None:
        self.zygote.close()



class Submission:
    """The sandboxed processes of one submission: one at a time, for the exercise being tested.

    `whole_scripts`: one process per script instead, holding only the student's code, for
    the tests of all its exercises (`grader grade` tries that first: see `grading.run_hidden_tests`).
    `clock`: the submission's deadlines, if it is graded in more than one pytest session.
    """

    def __init__(self, sandboxes: Sandboxes, root: Path, *, whole_scripts: bool = False, clock: Clock | None = None):
        self.sandboxes, self.root, self.whole_scripts = sandboxes, root, whole_scripts
        self.clock = clock or Clock(sandboxes.limits)
        self._current: StudentProcess | None = None
        self._scripts: dict[tuple[str, str], Script] = {}

    def script(self, track: str, stem: str) -> Script:
        """The student's script (raises `submissions.MissingScript`), read once."""
        if (track, stem) not in self._scripts:
            try:
                path = submissions.script_path(self.root, track, stem)
            except submissions.MissingScript:  # said the same wherever the class's folders are
                raise submissions.MissingScript(
                    f"{stem}.py (or .ipynb) is missing from this submission: hand in {track}/{stem}.ipynb "
                    f"(or .py), with the course's file name.") from None
            label = f"{track}/{path.name}"
            self._scripts[track, stem] = Script(track, stem, label, tuple(submissions.read_for_grading(path)))
        return self._scripts[track, stem]

    def for_exercise(self, track: str, stem: str, exercise: str) -> RemoteSubmission:
        script = self.script(track, stem)
        exercise = None if self.whole_scripts else exercise
        current = self._current
        if current is None or (current.script, current.exercise) != (script, exercise):
            if current is not None:
                current.close()
            self._current = None
            self._current = StudentProcess(self.sandboxes.zygote, self.sandboxes.next_policy(), script, exercise,
                                           self.clock)
        return RemoteSubmission(self._current)

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
