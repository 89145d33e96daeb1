"""`grader watch`: re-run a script's visible tests each time it (or its notebook) is saved.

Watches the exercise folders with watchfiles; after each save, that script's tests run
again (in the sandbox, as for `grader status`) and the board is drawn again with that
notebook's exercises shown. Ctrl-C stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles
from rich.console import Console

from grader import board, paths, status, submissions
from grader.checking import ExerciseStatus


def changed_scripts(changes: set[tuple[watchfiles.Change, str]], root: Path, tracks: list[str]
                    ) -> list[tuple[str, str]]:
    """(track, script stem) of every exercise script or notebook among the changed files."""
    scripts = {(track, s.stem) for track in tracks for s in paths.course_scripts(track)}
    found = []
    for _, name in changes:
        path = Path(name)
        key = (path.parent.name, path.stem)
        if path.suffix in (".py", ".ipynb") and path.parent.parent == root and key in scripts and key not in found:
            found.append(key)
    return found


def watch(tracks: list[str], target: str = "exercises", *, on_board: Callable[[list[ExerciseStatus], tuple], None],
          stop: threading.Event | None = None) -> None:
    """Call `on_board(board, (track, stem))` at the start and after each save, until `stop` is set."""
    root = submissions.target_root(target)
    folders = [root / track for track in tracks if (root / track).is_dir()]
    if not folders:
        raise FileNotFoundError(f"Nothing to watch: {paths.relative(root)} has no folder for {', '.join(tracks)}.")
    rows = None
    # The first (empty) yield comes once the watcher runs: a save made while the first board
    # is computed is seen.
    for changes in watchfiles.watch(*folders, stop_event=stop, debounce=400, raise_interrupt=False,
                                    yield_on_timeout=True, rust_timeout=300):
        if rows is None:
            rows = {track: status.track_status(track, target) for track in tracks}
            on_board([row for track in tracks for row in rows[track]], ())
        for track, stem in changed_scripts(changes, root, tracks):
            rows[track] = status.track_status(track, target)  # only the changed script's tests run again
            on_board([row for each in tracks for row in rows[each]], (track, stem))


def run(tracks: list[str], target: str = "exercises") -> int:
    console = Console()
    root = submissions.target_root(target)

    def draw(rows: list[ExerciseStatus], saved: tuple) -> None:
        books = board.notebooks(rows)
        current = next((book for book in books if (book.track, book.script) == saved), None)
        console.clear()
        console.print(board.render(rows, root, current=current))
        where = f"{saved[0]}/{saved[1]} saved; " if saved else ""
        console.print(f"[dim]{where}watching {paths.relative(root)} for saves (Ctrl-C to stop)[/dim]")

    try:
        watch(tracks, target, on_board=draw)
    except KeyboardInterrupt:  # while tests ran; their sandbox is gone with them
        pass
    console.print("Stopped watching.")
    return 0
