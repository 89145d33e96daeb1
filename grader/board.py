"""The student's board: one line per notebook in course order, the details of the current one.

Drawn by `grader status` and `grader watch` from the exercises' states (`grader.checking`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from grader.checking import MARK, ExerciseStatus

STYLE = {"passing": "green", "failing": "red", "todo": "yellow", "no tests": "dim"}


@dataclass(frozen=True)
class Notebook:
    track: str
    script: str
    rows: tuple[ExerciseStatus, ...]

    @property
    def done(self) -> int:
        return sum(row.state == "passing" for row in self.rows)

    @property
    def finished(self) -> bool:
        return all(row.state in ("passing", "no tests") for row in self.rows)


def notebooks(board: list[ExerciseStatus]) -> list[Notebook]:
    """The board's rows grouped by notebook, in the board's (course) order."""
    grouped: dict[tuple[str, str], list[ExerciseStatus]] = {}
    for row in board:
        grouped.setdefault((row.track, row.script), []).append(row)
    return [Notebook(track, script, tuple(rows)) for (track, script), rows in grouped.items()]


def next_exercise(board: list[ExerciseStatus]) -> ExerciseStatus | None:
    """The first exercise not passing yet, in course order."""
    return next((row for row in board if row.state in ("todo", "failing")), None)


def current_notebook(books: list[Notebook], root: Path, board: list[ExerciseStatus]) -> Notebook | None:
    """The unfinished notebook saved last (where the student is working), else the next one's."""
    unfinished = [book for book in books if not book.finished]
    if not unfinished:
        return None

    def saved_at(book: Notebook) -> float:
        files = [root / book.track / f"{book.script}{suffix}" for suffix in (".py", ".ipynb")]
        return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)

    latest = max(unfinished, key=saved_at)
    if saved_at(latest) > min(saved_at(book) for book in books) + 60.0:  # edited since the checkout
        return latest
    upcoming = next_exercise(board)
    return next((b for b in unfinished if upcoming and (b.track, b.script) == (upcoming.track, upcoming.script)),
                unfinished[0])


def render(board: list[ExerciseStatus], root: Path, *, full: bool = False, current: Notebook | None = None) -> Group:
    """The board: every notebook's done/total, with the exercises of `current` (of all, if `full`)."""
    books = notebooks(board)
    current = current or current_notebook(books, root, board)
    table = Table(title="Your progress", show_header=True, header_style="bold")
    table.add_column("notebook", no_wrap=True)
    table.add_column("done", justify="right", no_wrap=True)
    table.add_column("", overflow="ellipsis", no_wrap=True, max_width=70)
    for book in books:
        style = "green" if book.finished else ("yellow" if book.done == 0 else "")
        table.add_row(f"[{style}]{book.track}/{book.script}[/{style}]" if style else f"{book.track}/{book.script}",
                      f"{book.done}/{len(book.rows)}", "")
        if full or book == current:
            for row in book.rows:
                note = row.hint.splitlines()[0] if row.state == "failing" else ""
                mark = f"[{STYLE[row.state]}]{MARK[row.state]} {row.state}[/{STYLE[row.state]}]"
                checks = f" ({row.passed}/{row.total} checks)" if row.total else ""
                table.add_row(f"  {row.exercise}", "", f"{mark}{checks} {note}".rstrip())
    done = sum(row.state == "passing" for row in board)
    lines = [table, Text(f"{done} of {len(board)} exercises passing.")]
    upcoming = next_exercise(board)
    if upcoming is not None:
        lines.append(Text(
            f"Next: {upcoming.exercise} in exercises/{upcoming.track}/{upcoming.script}; run its check cell, or\n"
            f"  uv run grader check {upcoming.track}/{upcoming.exercise}"))
    return Group(*lines)
