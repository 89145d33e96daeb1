"""The checks behind nbgrader's test cells, run on a notebook's namespace in this process."""

from __future__ import annotations

import warnings

import pytest

from grader import loader, notebook_checks, paths, suites

SCRIPT = "diffusion/03_ddpm"


def namespace_of(root, track="diffusion", stem="03_ddpm") -> dict:
    """What a notebook's globals look like after running every cell of a script."""
    namespace = dict(vars(loader.load_script(root / track / f"{stem}.py").module))
    namespace["__name__"] = "__main__"
    return namespace


def test_visible_checks_pass_quietly_on_the_reference(capfd):
    assert notebook_checks.run_checks(SCRIPT, "forward_noise", namespace_of(paths.SOLUTIONS)) is None
    out, err = capfd.readouterr()
    assert "forward_noise: all 2 visible checks pass." in out
    assert err == ""


def test_visible_checks_raise_with_the_short_message_on_a_stub():
    with pytest.raises(notebook_checks.ExerciseNotPassing, match="Exercise 'forward_noise' is not done yet"):
        notebook_checks.run_checks(SCRIPT, "forward_noise", namespace_of(paths.EXERCISES))


def test_hidden_checks_return_the_points_earned(capfd):
    points = suites.points_by_exercise(suites.test_file("diffusion", "03_ddpm", "hidden"))
    earned = notebook_checks.run_checks(SCRIPT, "ddpm_loss", namespace_of(paths.SOLUTIONS), hidden=True)
    assert earned == points["ddpm_loss"]
    assert notebook_checks.run_checks(SCRIPT, "ddpm_loss", namespace_of(paths.EXERCISES), hidden=True) == 0.0
    assert capfd.readouterr().err == ""


def test_a_warning_in_student_code_reaches_neither_stderr_nor_the_score(capfd):
    namespace = namespace_of(paths.SOLUTIONS)
    correct = namespace["forward_noise"]

    def forward_noise(*args):
        warnings.warn("Explicitly requested dtype float64 is not available", UserWarning, stacklevel=1)
        return correct(*args)

    namespace["forward_noise"] = forward_noise
    points = suites.points_by_exercise(suites.test_file("diffusion", "03_ddpm", "hidden"))
    assert notebook_checks.run_checks(SCRIPT, "forward_noise", namespace, hidden=True) == points["forward_noise"]
    assert capfd.readouterr().err == ""


def test_other_exercises_come_from_the_reference_while_the_checks_run():
    """ddpm_sample calls reverse_step: a stubbed reverse_step must not cost ddpm_sample its points."""
    namespace = namespace_of(paths.SOLUTIONS)
    stub = namespace_of(paths.EXERCISES)["reverse_step"]
    namespace["reverse_step"] = stub
    points = suites.points_by_exercise(suites.test_file("diffusion", "03_ddpm", "hidden"))
    assert notebook_checks.run_checks(SCRIPT, "ddpm_sample", namespace, hidden=True) == points["ddpm_sample"]
    assert namespace["reverse_step"] is stub  # the notebook gets its own code back


def test_hidden_failures_never_quote_the_test_code():
    from grader.reports import safe_message

    pytest_report = "def test_x():\n>       assert jnp.allclose(got, expected)\nE   AssertionError"
    assert safe_message("yours 1.0, expected 2.0", brief=True) == "yours 1.0, expected 2.0"
    assert safe_message(pytest_report, brief=False, error="AssertionError") == (
        "The check failed with AssertionError.")
