"""Shared fixtures for the package's own tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import check_server, paths
from grader.pytest_plugin import compilation_cache_environment

# Every check in the suite starts its own process; tests/grader/test_check_server.py tests the warm server.
os.environ[check_server.ENABLED_VARIABLE] = "0"
# The processes the suite starts (pytest runs, nbgrader's and the site's kernels, JupyterLab's) share
# one compilation cache, so a program that one of them compiled is not compiled again by the next.
os.environ.update(compilation_cache_environment())


def run_pytest(*args: str, report: Path, cwd: Path = paths.REPO_ROOT, timeout: int = 600) -> tuple[list[dict], str]:
    """Run pytest in a fresh process; return the per-test outcomes and the printed output."""
    env = {**os.environ, "MPLBACKEND": "Agg", "COURSE_QUICK": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-W", "ignore",
               f"--grader-report={report}", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    outcomes = json.loads(report.read_text()) if report.exists() else []
    return outcomes, done.stdout + done.stderr


@pytest.fixture
def run_tests(tmp_path):
    """`run_tests(*args)` runs pytest in a subprocess and returns (outcomes, output)."""
    counter = iter(range(1000))
    return lambda *args, **kwargs: run_pytest(*args, report=tmp_path / f"report{next(counter)}.json", **kwargs)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """The course site, built once per test session with short training (as CI builds it).

    Tests that use it carry `pytest.mark.xdist_group("site")`, so that one worker builds it.
    """
    from grader.site.build import build

    return build(tmp_path_factory.mktemp("site") / "html", quick=True)


@pytest.fixture
def grader_cli_with_ctrl_c() -> list[str]:
    """The command `python -m grader.cli`, with the Ctrl-C handler a terminal gives: a
    pytest-xdist worker can hold SIGINT ignored, and its children would inherit that."""
    handler = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "from grader.cli import main; sys.exit(main())")
    return [sys.executable, "-c", handler]
