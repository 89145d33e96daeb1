"""`grader watch`: a save re-runs that script's visible tests and redraws the board."""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from grader import paths, percent, watch

TRACK, STEM = "warmup", "01_arrays_and_jit"


def answer_first_exercise(script: Path) -> str:
    """Save the script with its first exercise's stub replaced by the reference answer; return its name."""
    reference = percent.read_cells((paths.SOLUTIONS / TRACK / f"{STEM}.py").read_text())
    first = next(cell for cell in reference if cell.exercise)
    cells = percent.read_cells(script.read_text())
    text = "\n".join(first.source if cell.exercise == first.exercise else cell.source for cell in cells)
    script.write_text(text + "\n")
    return first.exercise


@pytest.fixture
def student_copy(tmp_path) -> Path:
    root = tmp_path / "mine"
    shutil.copytree(paths.EXERCISES / TRACK, root / TRACK)
    return root


@pytest.mark.slow
def test_a_save_reruns_that_script_and_redraws_the_board(student_copy):
    boards, stop = queue.Queue(), threading.Event()
    watcher = threading.Thread(target=watch.watch, args=([TRACK], str(student_copy)),
                               kwargs={"on_board": lambda rows, saved: boards.put((rows, saved)), "stop": stop})
    watcher.start()
    try:
        rows, saved = boards.get(timeout=180)
        assert saved == () and not any(row.state == "passing" for row in rows)
        exercise = answer_first_exercise(student_copy / TRACK / f"{STEM}.py")
        rows, saved = boards.get(timeout=180)
        assert saved == (TRACK, STEM)
        states = {row.exercise: row.state for row in rows}
        assert states.pop(exercise) == "passing"
        assert set(states.values()) == {"todo"}
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert not watcher.is_alive()


def test_only_exercise_scripts_and_notebooks_count_as_saves(student_copy):
    folder = student_copy / TRACK
    changes = {(1, str(folder / f"{STEM}.py")), (2, str(folder / f"{STEM}.ipynb")), (2, str(folder / "notes.txt")),
               (2, str(folder / ".ipynb_checkpoints" / f"{STEM}-checkpoint.ipynb")),
               (2, str(folder / "test_01_arrays_and_jit.py"))}
    assert watch.changed_scripts(changes, student_copy, [TRACK]) == [(TRACK, STEM)]


@pytest.mark.slow
def test_ctrl_c_stops_watching_cleanly(student_copy, grader_cli_with_ctrl_c):
    command = [*grader_cli_with_ctrl_c, "watch", TRACK, "--target", str(student_copy)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, deadline = "", time.monotonic() + 180
    while "Ctrl-C to stop" not in seen and time.monotonic() < deadline:
        seen += process.stdout.readline()
    assert "Ctrl-C to stop" in seen, seen
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "Stopped watching." in out, out
