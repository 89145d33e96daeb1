"""A reader on the course site, in headless Chromium: the home page, then one chapter per
track with its figures and rendered math, all served from the built folder with every
request off this machine refused (the site must work offline)."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator

import pytest

from grader import paths

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]


@pytest.fixture
def served_site(built_site) -> Iterator[str]:
    """The built site's URL, served on a free loopback port for the test."""
    handler = functools.partial(_QuietHandler, directory=str(built_site.out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def chapter_with_figure_and_math(site, track: str) -> str:
    """The first chapter of a track whose page has a figure and math."""
    for page in sorted((site / track).glob("[0-9]*.html")):
        text = page.read_text(encoding="utf-8")
        if '<img alt="figure"' in text and 'class="math' in text:
            return f"{track}/{page.name}"
    pytest.fail(f"no chapter of {track} shows both a figure and math")


def offline(page, base: str) -> list[str]:
    """Refuse every request that leaves the site; return the list of refused URLs."""
    refused: list[str] = []

    def route(request_route):
        if request_route.request.url.startswith(base):
            request_route.continue_()
        else:
            refused.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    return refused


def test_the_home_page_lists_the_tracks_in_course_order(served_site, page, screenshot):
    refused = offline(page, served_site)
    page.goto(f"{served_site}/index.html")
    page.wait_for_load_state("networkidle")
    links = page.locator("article a.reference.internal").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    tracks = [href.split("/")[0] for href in links if href.endswith("/index.html")]
    assert tracks == list(paths.tracks())
    screenshot("site-home")
    assert refused == []


@pytest.mark.parametrize("track", paths.tracks())
def test_a_chapter_shows_its_figures_and_math(built_site, served_site, page, screenshot, track):
    refused = offline(page, served_site)
    chapter = chapter_with_figure_and_math(built_site.out, track)
    page.goto(f"{served_site}/{chapter}")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("mjx-container svg", timeout=60_000)  # MathJax has typeset the math
    rendered_math = page.locator("mjx-container svg").count()
    figures = page.locator("img[alt='figure']").evaluate_all(
        "els => els.map(e => [e.complete && e.naturalWidth > 0, e.getBoundingClientRect().width])")
    assert rendered_math > 0
    assert figures and all(loaded and width > 0 for loaded, width in figures), figures
    assert page.locator("text=Do this chapter yourself").count() == 1
    assert not page.locator(".math").filter(has_text=re.compile(r"\\\(")).count(), "math left untypeset"
    page.locator("img[alt='figure']").first.scroll_into_view_if_needed()
    screenshot(f"site-{track}")
    assert refused == []
