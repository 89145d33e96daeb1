"""`grader status`: the student's board."""

from __future__ import annotations

import os
import time

import pytest
from rich.console import Console

from grader import board, cli, paths, status
from grader.checking import ExerciseStatus


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "CACHE", tmp_path / "cache")


@pytest.mark.slow
def test_untouched_exercises_are_todo(capsys):
    assert cli.main(["status", "diffusion"]) == 0
    board = status.track_status("diffusion")  # answered from the cache
    assert board and all(row.state == "todo" for row in board)
    out = capsys.readouterr().out
    assert "todo" in out and "Next: mixture_score in exercises/diffusion/01_langevin;" in out


@pytest.mark.slow
def test_reference_answers_are_passing():
    board = status.track_status("diffusion", target="solutions")
    assert board and all(row.state == "passing" for row in board), [r for r in board if r.state != "passing"]


@pytest.mark.slow
def test_check_shows_the_first_failing_check_of_an_exercise(tmp_path, capsys):
    script = paths.SOLUTIONS / "diffusion" / "03_ddpm.py"
    right, wrong = "jnp.where(t > 0, jnp.sqrt(beta), 0.0) * noise", "jnp.where(t > 0, beta, 0.0) * noise"
    wrong = script.read_text().replace(right, wrong)
    (tmp_path / "03_ddpm.py").write_text(wrong)
    assert cli.main(["check", "diffusion/reverse_step", "--target", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "✗ diffusion/03_ddpm reverse_step: 1/2 checks pass" in out
    assert "differ from what was expected" in out and "yours" in out


@pytest.mark.slow
def test_check_says_what_is_not_done_yet(capsys):
    assert cli.main(["check", "diffusion/forward_noise"]) == 1
    assert "not done yet: fill in `forward_noise` in exercises/diffusion/03_ddpm.py" in capsys.readouterr().out
    assert cli.main(["check", "diffusion/no_such_exercise"]) == 2


def drawn(rows: list[ExerciseStatus], root) -> list[str]:
    console = Console(record=True, width=120)
    console.print(board.render(rows, root))
    return console.export_text().splitlines()


BOARD = [ExerciseStatus("warmup", "01_arrays", "a", "passing", 2, 2, ""),
         ExerciseStatus("diffusion", "01_langevin", "b", "passing", 3, 3, ""),
         ExerciseStatus("diffusion", "01_langevin", "c", "todo", 0, 2, "fill in `c`"),
         ExerciseStatus("astro", "01_galaxies", "d", "failing", 1, 2, "d(x): yours 1, expected 2")]


def test_the_board_is_one_line_per_notebook_with_the_next_one_in_detail(tmp_path):
    lines = drawn(BOARD, tmp_path)
    notebooks = [line.split()[1] for line in lines if line.startswith("│ ") and "/" in line.split()[1]]
    assert notebooks == ["warmup/01_arrays", "diffusion/01_langevin", "astro/01_galaxies"]  # the board's order
    assert any("│   c " in line and "todo (0/2 checks)" in line for line in lines)
    assert not any("│   d " in line for line in lines)  # another notebook's exercises stay folded
    assert any(line.startswith("Next: c in exercises/diffusion/01_langevin;") for line in lines)


def test_the_board_details_the_notebook_saved_last(tmp_path):
    for track, script in (("diffusion", "01_langevin"), ("astro", "01_galaxies")):
        (tmp_path / track).mkdir()
        (tmp_path / track / f"{script}.py").write_text("")
    os.utime(tmp_path / "diffusion" / "01_langevin.py", (time.time() - 600,) * 2)
    lines = drawn(BOARD, tmp_path)
    assert any("│   d " in line and "yours 1, expected 2" in line for line in lines)
    assert not any("│   c " in line for line in lines)
