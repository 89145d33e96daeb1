"""The warm check server: checks run in children it forks, with the same limits and results."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from grader import check_server, checking, paths, sandbox

BAD = Path(__file__).parent / "bad_submissions"
LIMITS = sandbox.Limits(per_test_s=8, total_s=120)
pytestmark = pytest.mark.xdist_group("check-server")


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server of its own (in a private state folder), started as the first check would; stopped after."""
    monkeypatch.setattr(paths, "STATE", tmp_path / "state")
    monkeypatch.setenv(check_server.ENABLED_VARIABLE, "1")
    forked = []
    spawn = check_server.spawn

    def recording_spawn(*args, **kwargs):
        child = spawn(*args, **kwargs)
        forked.append(child is not None)
        return child

    monkeypatch.setattr(check_server, "spawn", recording_spawn)
    folder = check_server.folder()  # the state folder's path is too long for a socket: a private one
    before = set(folder.glob("*.pid"))
    sandbox.run_tests(_langevin_tests()[:1], BAD / "good", LIMITS)  # starts the server, runs in a process of its own
    assert forked == [False]
    deadline = time.monotonic() + 180
    while not set(folder.glob("*.pid")) - before:
        assert time.monotonic() < deadline, "".join(log.read_text() for log in folder.glob("*.log"))
        time.sleep(0.2)
    yield forked
    for pid_file in set(folder.glob("*.pid")) - before:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


def _langevin_tests() -> list[str]:
    return [nodeid for nodeid, _ in checking.visible_tests("diffusion", "01_langevin")]


def _results(folder: str) -> dict[str, tuple[bool, str]]:
    tests = _langevin_tests()
    outcomes = sandbox.run_tests(tests, BAD / folder, LIMITS, group_of={t: t for t in tests})
    return {nodeid.split("::")[-1]: (o.passed, o.message) for nodeid, o in outcomes.items()}


@pytest.mark.slow
def test_checks_run_in_forked_children_with_the_same_results(server):
    good = _results("good")
    assert good and all(passed for passed, _ in good.values()), good
    assert server[1:] == [True], "the check did not run in a child of the warm server"

    exits = _results("os_exit")
    assert any("ended the test process" in message for passed, message in exits.values() if not passed), exits
    assert any(passed for passed, _ in exits.values())  # the other exercises still pass, in a fresh child

    loops = _results("infinite_loop")
    assert any("more than 8 s" in message for passed, message in loops.values() if not passed), loops
    assert all(server[1:]), "a check after a crash or a time limit did not use the server"


def test_no_server_when_it_is_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "STATE", tmp_path)
    monkeypatch.setenv(check_server.ENABLED_VARIABLE, "0")
    assert check_server.spawn(["python", "-m", "grader.sandbox_child", "4096"], {}, tmp_path, 1, 2, "t") is None
    assert not (tmp_path / "check-server").exists()


def test_the_server_is_named_by_the_library_and_what_jax_reads_at_import():
    assert check_server.key({"JAX_ENABLE_X64": "1"}) != check_server.key({})
    assert check_server.key({"HOME": "/somewhere", "PWD": "/else"}) == check_server.key({})
