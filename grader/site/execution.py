"""Run the chapters into MyST-NB's cache (jupyter-cache), one kernel per core.

Sphinx executes notebooks one after the other; running them here first, in parallel, lets
the build find every chapter in the cache. A chapter whose code did not change is not run
again. Outputs of short training (`COURSE_QUICK=1`) and of full training are kept in
separate caches by the caller.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import nbformat

TIMEOUT_S = 900  # per cell: the longest full-length training demo takes a few minutes


def execute(pages: list[Path], cache_folder: Path) -> list[str]:
    """Execute the pages that are not cached yet; one line per failure (empty if none)."""
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    cache = get_cache(str(cache_folder))
    stale = not_cached(pages, cache_folder)
    if not stale:
        return []
    project = [cache.add_nb_to_project(str(page)) for page in stale]
    executor = load_executor("local-parallel", cache)
    result = executor.run_and_cache(filter_pks=[record.pk for record in project], timeout=TIMEOUT_S)
    failures = []
    for uri in result.excepted + result.errored:
        record = cache.get_project_record(uri)
        failures.append(f"{uri}: {record.traceback or 'failed'}")
    return failures


def not_cached(pages: list[Path], cache_folder: Path) -> list[Path]:
    """The pages whose code has no cached run (a new chapter, or one whose code changed)."""
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_folder))
    stale = []
    for page in pages:
        try:
            cache.match_cache_notebook(nbformat.read(page, 4))
        except KeyError:
            stale.append(page)
    return stale


def executed(page: Path, cache_folder: Path) -> nbformat.NotebookNode:
    """The cached run of a page, every cell's outputs included (the built page drops hidden cells')."""
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_folder))
    record = cache.match_cache_notebook(nbformat.read(page, 4))
    return cache.get_cache_bundle(record.pk).nb


@contextlib.contextmanager
def kernel_environment(quick: bool) -> Iterator[None]:
    """The kernels' environment while they run: `COURSE_QUICK` as asked, the grader's compilation
    cache (a chapter edited and run again compiles only what changed), and no plotting backend
    forced on them (the inline one shows figures); put back afterwards."""
    from grader.pytest_plugin import compilation_cache_environment

    cache = compilation_cache_environment()
    saved = {name: os.environ.get(name) for name in ("COURSE_QUICK", "MPLBACKEND", *cache)}
    os.environ.update(cache)
    os.environ["COURSE_QUICK"] = "1" if quick else "0"
    os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
