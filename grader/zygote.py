"""A fork server: imports JAX and the course once, then forks a sandboxed process per request.

`grader.remote.Zygote` starts `python -m grader.zygote FD` with one end of a socket pair.
The zygote never runs student code and never sees a test or the reference: it imports the
libraries (5 s that each sandboxed process would otherwise spend), then, per `spawn`
request, forks a child that closes everything it inherited, enters the sandbox
(`grader.namespaces`) and serves the grader over a fresh socket, whose other end goes
back to the grader (SCM_RIGHTS). Forking a process that has not started JAX's backend
(nor any thread: OpenBLAS is kept to one) is safe.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import sys
import time

from grader import preload

MESSAGE_SIZE = 1 << 16


def _import_everything(modules: list[str]) -> None:
    """Import what the children will need (`grader.preload`), then point JAX at the grader's cache."""
    preload.import_all(modules, restart=[sys.executable, "-m", "grader.zygote", sys.argv[1]])
    import jax

    cache = os.environ.get("GRADER_READ_ONLY_CACHE")
    if cache:  # the grader's compilation cache: the children read it, and cannot write to it
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _child(channel: socket.socket, policy) -> None:
    """In the forked child: keep only the channel, enter the sandbox, serve. Never returns."""
    from grader import namespaces, student_process, wire

    keep = channel.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    if not os.environ.get("GRADER_SHOW_STUDENT_OUTPUT"):  # printing is not a way to reach the grader
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    namespaces.enter(policy)
    wire.send(channel, b"ready")
    student_process.serve(channel)
    os._exit(0)


def _wait(pid: int, timeout: float, statuses: dict[int, int]) -> int | None:
    """The child's exit status once it has ended, waiting up to `timeout` seconds; None if it still runs."""
    deadline = time.monotonic() + timeout
    while pid not in statuses:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            statuses[pid] = os.waitstatus_to_exitcode(status)
        elif time.monotonic() >= deadline:
            return None
        else:
            time.sleep(0.01)
    return statuses[pid]


def serve(control: socket.socket) -> None:
    statuses: dict[int, int] = {}
    wake_read = preload.wake_on_child_exit()
    control.send(b"ready")
    while True:
        ready, _, _ = select.select([control, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
        statuses.update(preload.ended_children())
        if control not in ready:
            continue
        message = control.recv(MESSAGE_SIZE)
        if not message:
            return  # the grader is gone: so are we (and, by their parent-death signal, the children)
        request = pickle.loads(message)
        if request["op"] == "spawn":
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            pid = os.fork()
            statuses.pop(pid, None)  # a reused pid: the old status is not this child's
            if pid == 0:
                try:
                    control.close()
                    theirs.close()
                    _child(mine, request["policy"])
                finally:
                    os._exit(112)
            mine.close()
            socket.send_fds(control, [pickle.dumps({"pid": pid})], [theirs.fileno()])
            theirs.close()
        elif request["op"] == "probe":
            from grader import namespaces

            control.send(pickle.dumps({"missing": namespaces.probe(request["policy"])}))
        elif request["op"] == "kill":
            if request["pid"] not in statuses:
                try:
                    os.kill(request["pid"], signal.SIGKILL)  # the supervisor: its sandboxed child follows
                except ProcessLookupError:
                    pass
            control.send(pickle.dumps({"killed": True}))
        elif request["op"] == "status":
            control.send(pickle.dumps({"status": _wait(request["pid"], request["timeout"], statuses)}))


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _import_everything(sys.argv[2:])
    from grader import namespaces

    namespaces.set_parent_death_signal()
    serve(control)


if __name__ == "__main__":
    main()
