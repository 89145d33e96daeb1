"""requirements.txt (for pip, conda and pixi users) is what `uv.lock` pins, exported by uv."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from grader import paths

REQUIREMENTS = paths.REPO_ROOT / "requirements.txt"


def test_requirements_txt_is_current():
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: install it (`pip install uv`) to export the requirements.")
    header, body = REQUIREMENTS.read_text().split("\n", 2)[1], REQUIREMENTS.read_text().split("\n", 2)[2]
    command = shlex.split(header.removeprefix("#"))  # uv writes the command that made the file
    assert command[:2] == ["uv", "export"] and command[-2:] == ["-o", "requirements.txt"], header
    exported = subprocess.run([uv, *command[1:-2]], cwd=paths.REPO_ROOT, capture_output=True, text=True, check=True)
    assert exported.stdout.split("\n", 2)[2] == body, (
        f"requirements.txt is stale: run `{' '.join(command)}` and commit it.")
