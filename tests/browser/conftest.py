"""Headless Chromium (Debian's `chromium` package) driven by Playwright, for tests of what people see.

No browser is downloaded: Playwright drives the system's Chromium. Screenshots go to
`test-artifacts/` at the top of the repository (CI keeps that folder).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import paths

ARTIFACTS = paths.REPO_ROOT / "test-artifacts"


def chromium_executable() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.fail("Chromium is not installed: `apt-get install chromium` (Debian's package; .ci/run does this).")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable(), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request) -> Iterator:
    """A fresh page; its screenshot is saved as `test-artifacts/<test name>.png` at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    ARTIFACTS.mkdir(exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=False)
    context.close()


@pytest.fixture
def screenshot(page):
    """`screenshot(name)` saves the page as it is now as `test-artifacts/<name>.png`."""

    def save(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save
