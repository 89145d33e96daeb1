"""`grader sync`: generate the students' exercises from the reference solutions.

`solutions/<track>/NN_topic.py` is the one source. Its solution regions
(`### BEGIN SOLUTION` ... `### END SOLUTION`, inside nbgrader solution cells) become
stubs that raise `NotImplementedError` naming the exercise; everything else, hint
comments included, is kept. A set-up cell comes first and a check cell after every
exercise (`grader.check_cells`). The result is written as a percent script and its paired
notebook (no outputs) in `exercises/<track>/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

from grader import check_cells, notebooks, paths


class StubOutSolutions(ClearSolutions):
    """nbgrader's ClearSolutions, with a stub whose error names the exercise."""

    def preprocess_cell(self, cell, resources, cell_index):
        name = notebooks.exercise_name(cell) or "this cell"
        message = f"Exercise {name!r} is not done yet: replace this line with your code."
        self.code_stub = {"python": f"# YOUR CODE HERE\nraise NotImplementedError({message!r})"}
        return super().preprocess_cell(cell, resources, cell_index)


def stub_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student's version of a reference notebook."""
    exercise, _ = StubOutSolutions().preprocess(nbformat.from_dict(solution), {})
    return exercise


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    text: str

    def is_current(self) -> bool:
        return self.path.is_file() and self.path.read_text(encoding="utf-8") == self.text


def generated_files(track: str) -> list[GeneratedFile]:
    """Every file that `grader sync` writes for a track, with its expected content."""
    files = []
    for source in paths.solution_scripts(track):
        exercise = check_cells.with_check_cells(stub_notebook(notebooks.read_notebook(source)), track, source.stem)
        target = paths.EXERCISES / track / source.name
        files.append(GeneratedFile(target, notebooks.to_percent(exercise)))
        files.append(GeneratedFile(target.with_suffix(".ipynb"), notebooks.to_ipynb(exercise)))
    return files


def orphans(track: str, expected: list[GeneratedFile]) -> list[Path]:
    """Generated-looking files in `exercises/<track>/` that no solution produces any more."""
    folder = paths.EXERCISES / track
    wanted = {f.path for f in expected}
    candidates = [*folder.glob("[0-9]*.py"), *folder.glob("[0-9]*.ipynb")]
    return sorted(p for p in candidates if p not in wanted)


def sync(track_names: list[str] | None = None, *, check: bool = False) -> list[str]:
    """Regenerate the exercises (or, with `check`, only report what is stale).

    Returns one line per stale, written or orphaned file.
    """
    lines = []
    for track in track_names or paths.tracks():
        expected = generated_files(track)
        for file in expected:
            if file.is_current():
                continue
            lines.append(f"{'stale' if check else 'wrote'}: {paths.relative(file.path)}")
            if not check:
                file.path.parent.mkdir(parents=True, exist_ok=True)
                file.path.write_text(file.text, encoding="utf-8")
        for path in orphans(track, expected):
            lines.append(f"no solution for: {paths.relative(path)} (delete it or add its solution)")
    return lines
