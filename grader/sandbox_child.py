"""The student's side of the sandbox: a pytest plugin that reports each test over a pipe.

`grader.sandbox` starts `python -m grader.sandbox_child MEMORY_MB PYTEST_ARGS...` (pytest
under a memory limit) with `-p grader.sandbox_child` and `GRADER_CHANNEL=FD:TOKEN` in the
environment. The plugin takes the token out of the environment before any student
code is loaded, and sends one JSON line per test ("start", then "result") to the inherited
pipe, each carrying the token. The parent scores only what arrives there: what the
student's code prints, exits with or writes to files counts for nothing.

It also notices when student code has patched the grader's checks (or the NumPy and JAX
comparisons they rely on): that test fails, and the originals are put back for the next.
"""

from __future__ import annotations

import json
import os
from types import ModuleType

import pytest

from grader.pytest_plugin import Recorder

CHANNEL_VARIABLE = "GRADER_CHANNEL"


def _guarded_modules() -> list[ModuleType]:
    import chex
    import jax.numpy as jnp
    import numpy as np
    import numpy.testing

    from grader import checks, pytest_plugin, submissions

    return [checks, pytest_plugin, submissions, chex, np, numpy.testing, jnp, json]


class Guard:
    """Remembers the grader's functions before student code runs, and restores them."""

    def __init__(self):
        self.originals = {
            (module, name): value
            for module in _guarded_modules()
            for name, value in vars(module).items()
            if callable(value) and not name.startswith("__")
        }
        self.originals.update({(ChannelReporter, name): value for name, value in vars(ChannelReporter).items()
                               if callable(value)})

    def changed(self) -> list[str]:
        """Names that were replaced since; they are put back."""
        changed = []
        for (owner, name), value in self.originals.items():
            if getattr(owner, name, None) is not value:
                changed.append(f"{getattr(owner, '__name__', owner)}.{name}")
                setattr(owner, name, value)
        return changed


class ChannelReporter(Recorder):
    """Sends every test's start and outcome to the parent process."""

    def __init__(self, fd: int, token: str):
        super().__init__(None)
        self.stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self.token = token
        self.guard = Guard()

    def send(self, **message) -> None:
        self.stream.write(json.dumps({**message, "token": self.token}) + "\n")
        self.stream.flush()

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.send(event="start", nodeid=nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if call.when == "call":
            changed = self.guard.changed()
            if changed:
                report.outcome = "failed"
                report.longrepr = (f"Your code replaced part of the grader ({', '.join(changed)}). "
                                   "That is not allowed: this test counts as failed.")
                report.user_properties.append(("brief", True))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        super().pytest_runtest_logreport(report)
        if report.when == "teardown":
            self.send(event="result", **self.results[report.nodeid])


def pytest_configure(config: pytest.Config) -> None:
    channel = os.environ.pop(CHANNEL_VARIABLE, None)
    if channel is None:
        raise pytest.UsageError(f"grader.sandbox_child needs {CHANNEL_VARIABLE}=FD:TOKEN (set by grader.sandbox).")
    fd, token = channel.split(":", 1)
    config.pluginmanager.register(ChannelReporter(int(fd), token), "grader-channel")


def main(argv: list[str]) -> int:
    """`python -m grader.sandbox_child MEMORY_MB PYTEST_ARGS...`: pytest under a memory limit."""
    import resource

    limit = int(argv[0]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return pytest.main(argv[1:])


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
