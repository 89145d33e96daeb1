"""`grader status`: the student's board."""

from __future__ import annotations

import pytest

from grader import cli, paths, status


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
