"""Run the visible tests on a student's own code: a child process per run, with time and memory limits.

The child is pytest with `grader.sandbox_child`, which reports each test over a private
pipe. The parent decides every score from those reports alone. If the child dies, hangs
or exits in the middle of a test, that test fails with the reason, and a fresh child runs
the tests that remain, so one bad function costs only its own tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from grader import check_server, paths
from grader.pytest_plugin import TestOutcome
from grader.sandbox_child import CHANNEL_VARIABLE

_running: set[subprocess.Popen] = set()  # children alive now, to stop them all on Ctrl-C


_stopping = threading.Event()


class Stopped(Exception):
    """Grading was stopped (Ctrl-C): the results of this run are incomplete and must not be kept."""


def stop_all() -> None:
    """Kill every child still running (each is in its own process group) and start no new one."""
    _stopping.set()
    for child in list(_running):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


@dataclass(frozen=True)
class Limits:
    per_test_s: float = 120.0  # a test running longer is taken to be an endless loop
    total_s: float = 900.0  # for all the tests of one run
    memory_mb: int = 4096  # address space of the child


def _child_command(nodeids: list[str], target: Path, memory_mb: int) -> list[str]:
    return [
        sys.executable, "-m", "grader.sandbox_child", str(memory_mb), *[str(paths.REPO_ROOT / n) for n in nodeids],
        "-p", "grader.sandbox_child", f"--target={target}", f"--rootdir={paths.REPO_ROOT}",
        "-o", "addopts=", "--import-mode=importlib", "-q", "-p", "no:cacheprovider", "-W", "ignore",
        "-p", "no:unraisableexception", "-p", "no:threadexception",  # each runs gc.collect(): 0.3 s
    ]


def _why_it_stopped(returncode: int | None, reason: str | None) -> str:
    if reason:
        return reason
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"The test process was killed by {name}{hint} during this test."
    return (f"Your code ended the test process (exit status {returncode}) during this test: "
            "do not call sys.exit() or os._exit() in an exercise.")


def _run_child(nodeids: list[str], target: Path, limits: Limits, deadline: float,
               workdir: Path, extra_env: dict[str, str]) -> tuple[dict[str, TestOutcome], str | None, str, str]:
    """One child: its results, the test it stopped in (if any), why, and the tail of its output."""
    read_end, write_end = os.pipe()
    token = secrets.token_hex(16)
    env = {**os.environ, CHANNEL_VARIABLE: f"{write_end}:{token}", "COURSE_QUICK": "1", "MPLBACKEND": "Agg",
           "PYTHONDONTWRITEBYTECODE": "1", **extra_env}
    log = workdir / "child-output.txt"
    command = _child_command(nodeids, target, limits.memory_mb)
    with open(log, "wb") as output:
        child = check_server.spawn(command, {k: v for k, v in env.items() if k != CHANNEL_VARIABLE}, workdir,
                                   output.fileno(), write_end, token)
        if child is None:  # no warm server (yet): a process of its own
            child = subprocess.Popen(command, cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, pass_fds=(write_end,),
                                     start_new_session=True)  # killed as a group
    _running.add(child)
    os.close(write_end)
    results: dict[str, TestOutcome] = {}
    current, started, reason, buffer = None, time.monotonic(), None, b""
    with os.fdopen(read_end, "rb", buffering=0) as channel:
        while True:
            now = time.monotonic()
            test_deadline = started + limits.per_test_s if current else deadline
            wait = min(test_deadline, deadline) - now
            if wait <= 0:
                reason = (f"This test ran for more than {limits.per_test_s:g} s (an endless loop?)."
                          if now < deadline else "The time limit for the whole submission ran out in this test.")
                break
            ready, _, _ = select.select([channel], [], [], wait)
            if not ready:
                continue
            chunk = channel.read(65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                message = _parse(line, token)
                if message is None:
                    continue
                if message["event"] == "start":
                    current, started = message["nodeid"], time.monotonic()
                elif message["event"] == "result" and message["nodeid"] == current:
                    results[current] = TestOutcome.from_record(message)
                    current, started = None, time.monotonic()
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # a server's child may be gone before its exit is told
            os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    _running.discard(child)
    tail = log.read_text(errors="replace")[-2000:]
    stopped_in = current if current not in results else None
    return results, stopped_in, _why_it_stopped(child.returncode, reason) if stopped_in else "", tail


def _parse(line: bytes, token: str) -> dict | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("token") != token or "nodeid" not in message:
        return None
    return message


def run_tests(nodeids: list[str], target: Path, limits: Limits = Limits(),
              group_of: dict[str, str] | None = None, env: dict[str, str] | None = None) -> dict[str, TestOutcome]:
    """Run the given tests (ids relative to the repository) against `target`; a TestOutcome for each.

    When the process stops (crash, exit, time limit) in a test, the other tests of its group
    (`group_of`, e.g. its exercise; by default its file) are not run but failed with the
    same reason: the same code would most likely stop it again, once per test. `env` adds
    environment variables for the child.
    """
    group_of = group_of or {n: n.split("::")[0] for n in nodeids}
    results: dict[str, TestOutcome] = {}
    remaining = list(nodeids)
    deadline = time.monotonic() + limits.total_s
    with tempfile.TemporaryDirectory(prefix="grader-") as workdir:
        while remaining:
            if _stopping.is_set():
                raise Stopped("grading was stopped")
            found, stopped_in, why, tail = _run_child(remaining, target, limits, deadline, Path(workdir), env or {})
            if _stopping.is_set():  # killed by stop_all(), not by the student's code
                raise Stopped("grading was stopped")
            results.update(found)
            if stopped_in is not None:
                results[stopped_in] = TestOutcome(stopped_in, False, why)
                note = f"Not run: the process stopped in an earlier test of this exercise.\n{why}"
                results.update({n: TestOutcome(n, False, note) for n in remaining
                                if group_of[n] == group_of[stopped_in] and n not in results})
            remaining = [n for n in remaining if n not in results]
            if remaining and (stopped_in is None or time.monotonic() >= deadline):
                # The child stopped outside any test (collection, start-up) or time is up: no retry.
                reason = "The time limit for the whole submission ran out before this test." \
                    if time.monotonic() >= deadline else f"The tests could not run:\n{tail.strip()[-800:]}"
                results.update({n: TestOutcome(n, False, reason) for n in remaining})
                remaining = []
    return {n: results[n] for n in nodeids}
