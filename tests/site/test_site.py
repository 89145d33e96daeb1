"""The course site: every chapter runs top to bottom with its check cells passing, and the
site shows the worked answers but nothing of the hidden tests.

The build itself fails on any execution error, failed check, broken link or warning
(`grader.site.build`); tests/browser/test_site.py looks at the pages in Chromium.
"""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from grader import check_cells, paths
from grader.site import build, pages

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]


def test_every_chapter_ran_and_every_check_cell_passed(built_site):
    assert [c.docname for c in built_site.chapters] == [c.docname for c in pages.chapters()]
    assert build.failing_checks(built_site) == []
    for chapter in built_site.chapters:
        notebook = built_site.executed(chapter)
        checks = [cell for cell in notebook.cells if check_cells.is_check_cell(cell)]
        assert len(checks) == len(pages.percent.exercises(chapter.script)), chapter.docname
        assert all(cell.execution_count for cell in notebook.cells if cell.cell_type == "code"), chapter.docname


def test_every_chapter_page_links_its_exercise_notebook_and_tests(built_site):
    for chapter in built_site.chapters:
        page = (built_site.out / f"{chapter.docname}.html").read_text(encoding="utf-8")
        assert f"{chapter.stem}.ipynb" in page and f"test_{chapter.stem}.py" in page, chapter.docname
        assert f"grader check {chapter.track}/" in page, chapter.docname
        assert page.count("check(&quot;") == 1 and "exercise_checks" not in page, (
            f"{chapter.docname} shows its set-up or check cells (only the tip names one)")
    downloads = {p.name for p in (built_site.out / "_downloads").rglob("*") if p.is_file()}
    assert {f"{c.stem}.ipynb" for c in built_site.chapters} <= downloads


def hidden_test_names() -> set[str]:
    """Names of the hidden tests that no visible test shares."""
    def names(folder):
        return {node.name for path in folder.rglob("test_*.py") for node in ast.parse(path.read_text()).body
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    return names(paths.HIDDEN_TESTS) - names(paths.EXERCISES)


def hidden_only_lines() -> set[str]:
    """Lines (40 characters or more) of the hidden tests that appear nowhere students see."""
    def lines(files):
        return {line.strip() for path in files for line in path.read_text().splitlines() if len(line.strip()) >= 40}
    seen = lines([*paths.EXERCISES.rglob("*.py"), *paths.SOLUTIONS.rglob("*.py"),
                  *(paths.REPO_ROOT / "course").rglob("*.py")])
    return lines(paths.HIDDEN_TESTS.rglob("*.py")) - seen


def test_nothing_of_the_hidden_tests_is_on_the_site(built_site):
    hidden_names, hidden_lines = hidden_test_names(), hidden_only_lines()
    assert len(hidden_names) > 50 and len(hidden_lines) > 100
    for path in built_site.out.rglob("*"):
        if path.suffix not in (".html", ".ipynb", ".py", ".txt", ".js") or "_static" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join(cell.source for cell in nbformat.reads(text, 4).cells)
        words = set(re.findall(r"\w+", text))
        leaked = sorted(hidden_names & words)
        leaked += sorted(hidden_lines & {line.strip() for line in text.splitlines()})
        assert not leaked, f"{path.relative_to(built_site.out)} shows hidden tests: {leaked[:5]}"


def test_a_second_build_executes_nothing_again(built_site):
    from grader.site import execution

    staged = pages.stage(built_site.work / "source")
    assert execution.not_cached([built_site.work / "source" / f"{c.docname}.ipynb" for c in staged],
                                built_site.work / "jupyter_cache") == []


def test_an_out_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("my thesis")
    with pytest.raises(build.SiteError, match="did not write"):
        build.build(tmp_path, quick=True, tracks=["warmup"])
    assert (tmp_path / "thesis.tex").read_text() == "my thesis"
