"""`grader status`: the student's board."""

from __future__ import annotations

import pytest

from grader import cli, status


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "CACHE", tmp_path / "cache")


@pytest.mark.slow
def test_untouched_exercises_are_todo(capsys):
    assert cli.main(["status", "diffusion"]) == 0
    board = status.track_status("diffusion")  # answered from the cache
    assert board and all(row.state == "todo" for row in board)
    out = capsys.readouterr().out
    assert "todo" in out and "Next: mixture_score in exercises/diffusion/01_langevin.py" in out


@pytest.mark.slow
def test_reference_answers_are_passing():
    board = status.track_status("diffusion", target="solutions")
    assert board and all(row.state == "passing" for row in board), [r for r in board if r.state != "passing"]
