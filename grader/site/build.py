"""Build the course site: stage the source, execute the chapters, run Sphinx, check the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader import check_cells, paths
from grader.site import execution, pages

MARKER = ".course-site"  # in a folder `grader site` wrote, so that it may replace it


class SiteError(Exception):
    """The site could not be built; the message says what to do."""


@dataclass(frozen=True)
class Built:
    out: Path
    work: Path  # source/, html/, jupyter_execute/ and the execution cache
    chapters: list[pages.Chapter]

    def executed(self, chapter: pages.Chapter) -> nbformat.NotebookNode:
        """The chapter's notebook as it ran, with the outputs of its hidden check cells."""
        return execution.executed(self.work / "source" / f"{chapter.docname}.ipynb", self.work / "jupyter_cache")


def work_folder(quick: bool) -> Path:
    """Where a build keeps its staged source and caches; quick and full outputs apart."""
    return paths.STATE / "site" / ("quick" if quick else "full")


def build(out: Path, *, quick: bool, tracks: list[str] | None = None) -> Built:
    """Build the site into `out`; raise SiteError on an execution error, a failed check or a warning."""
    _check_out(out)
    work = work_folder(quick)
    source = work / "source"
    chapters = pages.stage(source, tracks)
    notebook_pages = [source / f"{chapter.docname}.ipynb" for chapter in chapters]
    with execution.kernel_environment(quick):
        failures = execution.execute(notebook_pages, work / "jupyter_cache")
        if failures:
            raise SiteError("chapters failed to run:\n" + "\n\n".join(failures))
        _sphinx(source, work)  # it runs the model cards and the benchmarks page
    built = Built(out, work, chapters)
    failing = failing_checks(built)
    if failing:
        raise SiteError("check cells fail on the reference answers:\n" + "\n".join(failing))
    _publish(work / "html", out)
    return built


def _sphinx(source: Path, work: Path) -> None:
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-d", str(work / "doctrees"), str(source), str(work / "html")]
    env = {**os.environ, "COURSE_SITE_CACHE": str(work / "jupyter_cache")}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SiteError(f"Sphinx failed (every warning is an error):\n{done.stderr[-20000:]}")


def failing_checks(built: Built) -> list[str]:
    """A line per check cell that did not show ✓ when its chapter ran."""
    failing = []
    for chapter in built.chapters:
        for cell in built.executed(chapter).cells:
            if check_cells.is_check_cell(cell):
                shown = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)
                if not shown.startswith("✓"):
                    failing.append(f"{chapter.docname} {cell.source}: {shown.strip()[:300]}")
    return failing


def _check_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SiteError(f"{out} exists and holds files that `grader site` did not write; "
                        "give --out an empty or new folder.")


def _publish(html: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(html, out, ignore=shutil.ignore_patterns(".buildinfo", ".doctrees"))
    (out / MARKER).write_text("built by `grader site`; the whole folder is replaced by the next build\n")
