"""Import libraries in a fork server before it forks: once, and only what keeps forking safe.

Forking a process that has not started JAX's backend, nor any thread, is safe; a module
that starts either at import is left out, and the server starts over without it.
"""

from __future__ import annotations

import importlib
import os
import sys

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
