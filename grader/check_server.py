"""A warm process for `grader check`, `status` and `watch`: it imports pytest, JAX and the course
once, then forks the visible tests' child (`grader.sandbox_child`) per request.

Each check otherwise starts a Python that spends about 5 s importing before the first test.
The first check of a session starts the server in the background (and runs as before); the
later ones connect to `STATE/check-server/KEY.sock`, where KEY names the checkout, this
Python, the library's version and the environment variables read at import (JAX, XLA, the course),
so an edit to the course or the grader starts a fresh server. The server leaves after
`IDLE_S` seconds without a request. It runs no student code itself: only its children do,
exactly as the children `grader.sandbox` starts otherwise (same command line, environment,
limits and reporting pipe). Set `GRADER_CHECK_SERVER=0` to start a new process per check.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader import paths, preload

IDLE_S = 900.0
ENABLED_VARIABLE = "GRADER_CHECK_SERVER"
_READ_AT_IMPORT = ("JAX_", "XLA_", "MPL", "COURSE_", "PYTHON", "OPENBLAS_", "OMP_", "EQX_")
_MESSAGE = 1 << 20


def folder() -> Path:
    """Where the servers' sockets live: the state folder, or (when its path is too long for a socket
    address, about 100 bytes) a folder of this user's own in the temporary directory."""
    mine = paths.STATE / "check-server"
    if len(str(mine)) + len("/0123456789abcdef.sock") < 100:
        return mine
    private = Path(tempfile.gettempdir()) / f"jax-genai-course-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    if private.is_symlink() or private.stat().st_uid != os.getuid() or private.stat().st_mode & 0o077:
        raise PermissionError(f"{private} is not this user's own folder")
    return private


def key(env: dict[str, str]) -> str:
    """Names the server that may run children for this checkout, Python, library and environment."""
    read = sorted((k, v) for k, v in env.items() if k.startswith(_READ_AT_IMPORT))
    text = json.dumps([str(paths.STATE), sys.executable, paths.library_digest(), read])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def enabled() -> bool:
    return os.environ.get(ENABLED_VARIABLE, "1") != "0"


# --- the client's side ----------------------------------------------------------------------------


class ForkedChild:
    """A child forked by the server, with the part of `subprocess.Popen` that `grader.sandbox` uses."""

    def __init__(self, connection: socket.socket, pid: int):
        self.connection, self.pid, self.returncode = connection, pid, None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.connection], [], [], 0)[0]:
            self._read_exit()
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._read_exit()
        return self.returncode

    def _read_exit(self) -> None:
        reply = self.connection.recv(_MESSAGE)
        # The server gone without a word: its child was killed with it (its process group).
        self.returncode = json.loads(reply)["exit"] if reply else -signal.SIGKILL
        self.connection.close()


def spawn(argv: list[str], env: dict[str, str], cwd: Path, output: int, channel: int,
          token: str) -> ForkedChild | None:
    """The child `argv` (`python -m grader.sandbox_child ...`) forked by a warm server; None when
    there is none yet (one is then started for the next call) or it cannot be reached."""
    if not enabled():
        return None
    try:
        address = folder() / f"{key(env)}.sock"
    except OSError:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(address))
        request = json.dumps({"argv": argv[3:], "env": env, "cwd": str(cwd), "token": token}).encode()
        socket.send_fds(connection, [request], [output, channel])
        reply = connection.recv(_MESSAGE)
        if not reply:
            raise ConnectionError("the check server closed the connection")
        return ForkedChild(connection, json.loads(reply)["pid"])
    except (OSError, ValueError, KeyError):
        connection.close()
        _start(address, env)
        return None


def _start(address: Path, env: dict[str, str]) -> None:
    """Start a server for `address` in the background, unless one is starting already."""
    starting = address.with_suffix(".starting")
    try:
        if starting.exists() and time.time() - starting.stat().st_mtime < 120:
            return
        address.parent.mkdir(parents=True, exist_ok=True)
        starting.write_text(str(os.getpid()))
        with open(address.with_suffix(".log"), "ab") as log:
            # One BLAS thread: a process with threads cannot fork safely (the children keep it).
            subprocess.Popen([sys.executable, "-m", "grader.check_server", str(address)],
                             env={**env, "OPENBLAS_NUM_THREADS": "1"},
                             cwd=address.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True)
    except OSError:  # no server this time: every check still runs, in a process of its own
        return


# --- the server's side ----------------------------------------------------------------------------


def preloaded_modules() -> list[str]:
    """The course's libraries, pytest with its plugins, and the visible tests' child."""
    from grader import remote

    plugins = sorted({entry.module for entry in importlib.metadata.entry_points(group="pytest11")})
    return list(dict.fromkeys(["pytest", "_pytest.config", *plugins, "grader.pytest_plugin", "grader.sandbox_child",
                               *remote.preloaded_modules(paths.tracks())]))


def _run_child(request: dict, output: int, channel: int) -> None:
    """In the forked child: become the process `grader.sandbox` would have started. Never returns."""
    from grader import sandbox_child

    os.setpgid(0, 0)  # its own process group, which the client kills on a time limit
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.closerange(3, channel)
    os.closerange(channel + 1, 1 << 16)
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[sandbox_child.CHANNEL_VARIABLE] = f"{channel}:{request['token']}"
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", errors="replace")
    sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", errors="replace")
    code = 1
    try:
        code = sandbox_child.main(request["argv"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))


def serve(listener: socket.socket) -> None:
    """Fork a child per connection; tell the client its pid, then its exit status. Leave when idle."""
    wake_read = preload.wake_on_child_exit()
    clients: dict[int, socket.socket] = {}  # child pid -> the connection that asked for it
    last_request = time.monotonic()
    while True:
        timeout = None if clients else max(0.0, last_request + IDLE_S - time.monotonic())
        ready, _, _ = select.select([listener, wake_read, *clients.values()], [], [], timeout)
        if not ready and not clients:
            return
        if wake_read in ready:
            os.read(wake_read, 4096)
        _reap(clients)
        for pid, connection in list(clients.items()):
            if connection in ready:  # the client left (Ctrl-C, killed): so does its child
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        if listener in ready:
            last_request = time.monotonic()
            connection, _ = listener.accept()
            try:
                message, fds, _, _ = socket.recv_fds(connection, _MESSAGE, 2)
                request = json.loads(message)
                output, channel = fds
            except (OSError, ValueError):
                connection.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in clients.values():
                    other.close()
                connection.close()
                _run_child(request, output, channel)
            with contextlib.suppress(OSError):  # as the child does: the client may kill the group at once
                os.setpgid(pid, pid)
            os.close(output)
            os.close(channel)
            connection.sendall(json.dumps({"pid": pid}).encode())
            clients[pid] = connection


def _reap(clients: dict[int, socket.socket]) -> None:
    for pid, exit_status in preload.ended_children():
        connection = clients.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps({"exit": exit_status}).encode())
            connection.close()


def main(address: Path) -> None:
    modules = sys.argv[2:] or preloaded_modules()  # given when it started over without one
    preload.import_all(modules, restart=[sys.executable, "-m", "grader.check_server", str(address)])
    os.umask(0o077)
    partial = address.with_suffix(f".{os.getpid()}.partial")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(partial))
    listener.listen(16)
    address.with_suffix(".pid").write_text(str(os.getpid()))
    os.replace(partial, address)  # clients see the server only once it is ready
    with contextlib.suppress(FileNotFoundError):
        address.with_suffix(".starting").unlink()
    identity = address.stat().st_ino
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leave through the clean-up below
    try:
        serve(listener)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if address.stat().st_ino == identity:  # still ours, not a newer server's
                address.unlink()
                address.with_suffix(".pid").unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
