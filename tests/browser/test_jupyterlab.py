"""A student in JupyterLab: run the first exercise's check cell, see the TODO, answer, see the ✓.

The real JupyterLab server runs on a free loopback port with a token, on a copy of the
notebook in a temporary folder (the repository's files are never edited), and is stopped
at the end. Headless Chromium does what a student would: Shift+Enter through the cells,
type the answer into the exercise's cell, run it and its check again.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from grader import notebooks, paths

NOTEBOOK = Path("exercises/diffusion/03_ddpm.ipynb")
EXERCISE = "forward_noise"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path) -> Iterator[tuple[str, Path]]:
    """(URL with token, root folder) of a JupyterLab server serving a copy of the notebook."""
    root = tmp_path / "lab"
    (root / NOTEBOOK.parent).mkdir(parents=True)
    shutil.copy(paths.REPO_ROOT / NOTEBOOK, root / NOTEBOOK)
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no news pop-up over the notebook
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--ServerApp.allow_root=True"],  # CI runs as root
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "COURSE_QUICK": "1", "MPLBACKEND": "Agg", "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
             "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield f"{base}/lab/tree/{NOTEBOOK.as_posix()}?token={token}", root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def reference_answer(exercise: str) -> str:
    solution = notebooks.read_notebook(paths.SOLUTIONS / "diffusion" / "03_ddpm.py")
    (cell,) = [c for c in solution.cells if notebooks.exercise_name(c) == exercise]
    return cell.source


def cell_index_of_check(exercise: str) -> int:
    cells = notebooks.read_notebook(paths.REPO_ROOT / NOTEBOOK).cells
    (index,) = [i for i, cell in enumerate(cells) if cell.source == f'check("{exercise}")']
    return index


@pytest.mark.slow
def test_a_student_checks_an_exercise_in_jupyterlab(jupyterlab, page, screenshot):
    url, _ = jupyterlab
    page.goto(url)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"\| Idle$")).wait_for(timeout=120_000)  # the kernel has started
    first_prompt = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first
    for attempt in range(3):  # on a busy machine a key press may come before the notebook listens
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Escape")  # command mode: Shift+Enter runs a cell and selects the next
        for _ in range(cell_index_of_check(EXERCISE) + 1):
            page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("prompt => /[0-9*]/.test(prompt.textContent)", arg=first_prompt.element_handle(),
                                   timeout=30_000)
            break
        except PlaywrightTimeout:
            assert attempt < 2, "the notebook's cells never ran"
    todo = page.get_by_text(f"not done yet: fill in `{EXERCISE}` in its cell above")
    todo.wait_for(timeout=240_000)
    screenshot("jupyterlab-check-todo")

    # Back up to the exercise's cell (past its check cell), replace the stub with the answer.
    page.keyboard.press("Escape")
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(reference_answer(EXERCISE))  # as pasted: no auto-indent
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    passed = page.get_by_text(f"✓ {EXERCISE}: 2/2 checks pass")
    passed.wait_for(timeout=240_000)
    assert passed.is_visible()
    screenshot("jupyterlab-check-passes")
