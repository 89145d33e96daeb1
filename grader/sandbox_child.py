"""The student's side of the sandbox: a pytest plugin that reports each test over a pipe.

`grader.sandbox` starts `python -m grader.sandbox_child MEMORY_MB PYTEST_ARGS...` (pytest
under a memory limit) with `-p grader.sandbox_child` and `GRADER_CHANNEL=FD:TOKEN` in the
environment. The plugin takes the token out of the environment before any student
code is loaded, and sends one JSON line per test ("start", then "result") to the inherited
pipe, each carrying the token. The parent scores only what arrives there: what the
student's code prints, exits with or writes to files counts for nothing.

It serves `grader check` and `grader status`, which run the visible tests on a student's
own work: a crash or an endless loop costs one test, not the session. Grades for credit
come from `grader grade`, which runs the tests in a trusted process and only the student's
code in an OS sandbox (`grader.remote`).
"""

from __future__ import annotations

import json
import os

import pytest

from grader.pytest_plugin import Recorder

CHANNEL_VARIABLE = "GRADER_CHANNEL"


class ChannelReporter(Recorder):
    """Sends every test's start and outcome to the parent process."""

    def __init__(self, fd: int, token: str):
        super().__init__(None)
        self.stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self.token = token

    def send(self, **message) -> None:
        self.stream.write(json.dumps({**message, "token": self.token}) + "\n")
        self.stream.flush()

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.send(event="start", nodeid=nodeid)

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
