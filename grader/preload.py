"""What the two fork servers (`grader.zygote`, `grader.check_server`) share: importing the
libraries once, and only what keeps forking safe; waking up and reaping when a child ends.

Forking a process that has not started JAX's backend, nor any thread, is safe; a module
that starts either at import is left out, and the server starts over without it.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Iterator

# Imported by the students' own scripts instead: at import, blackjax starts JAX's backend (its
# threads would not survive a fork) and IPython a thread of its own.
FORK_UNSAFE = ("blackjax", "IPython")


def fork_safe() -> bool:
    """Whether this process may fork: JAX's backend not started and no thread but the main one."""
    from jax._src import xla_bridge

    return not xla_bridge._backends and len(os.listdir("/proc/self/task")) == 1


def import_all(modules: list[str], restart: list[str]) -> None:
    """Import `modules` after asking for the simulated CPU devices; a module that fails to import
    is skipped, one that makes forking unsafe restarts the process as `restart + the others`."""
    from course import devices

    devices.request_cpu_devices()  # before JAX starts: the children get 8 simulated CPU devices
    if not fork_safe():
        raise RuntimeError("This process runs threads before importing anything: start it with "
                           "OPENBLAS_NUM_THREADS=1 (NumPy's BLAS starts a pool of threads otherwise).")
    for position, name in enumerate(modules):
        if name.split(".")[0] in FORK_UNSAFE:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 -- the child's own import of it will report the error
            continue
        if not fork_safe():  # start again without it
            os.execv(sys.executable, [*restart, *modules[:position], *modules[position + 1:]])


def wake_on_child_exit() -> int:
    """A file descriptor that becomes readable whenever a child ends (for `select`); drain it with
    `os.read` and collect the children with `ended_children`."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    return wake_read


def ended_children() -> Iterator[tuple[int, int]]:
    """(pid, exit status as `subprocess` gives it) of every child that has ended, without waiting."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)
