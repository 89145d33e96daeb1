"""The check cells of the students' notebooks: where `grader sync` puts them, and what they say.

That they pass on the reference answers is tested where the answered notebooks run top to
bottom (the course site runs every chapter: tests/site/test_site.py); from the installed wheel,
in test_installed_course.py.
"""

from __future__ import annotations

import subprocess

import pytest

from grader import check_cells, loader, notebook_checks, notebooks, paths, percent


def namespace_of(root, track: str, stem: str) -> dict:
    """A notebook's globals after running its cells: the script's definitions, and its `check`."""
    namespace = dict(vars(loader.load_script(root / track / f"{stem}.py").module))
    namespace["__name__"] = "__main__"
    exec(check_cells.setup_cell(track, stem).source, namespace)  # the course is installed: no pip
    return namespace


def run_check_cell(namespace: dict, exercise: str) -> notebook_checks.CheckResult:
    return eval(check_cells.check_cell(exercise).source, namespace)


@pytest.mark.parametrize("track", paths.tracks())
def test_every_notebook_starts_with_its_setup_cell_and_checks_each_exercise_after_it(track):
    for script in paths.solution_scripts(track):
        for student_file in (script.name, f"{script.stem}.ipynb"):
            cells = notebooks.read_notebook(paths.EXERCISES / track / student_file).cells
            assert cells[0].source == check_cells.setup_cell(track, script.stem).source
            exercises = [e.name for e in percent.exercises(script)]
            after = [following.source for cell, following in zip(cells, cells[1:], strict=False)
                     if notebooks.exercise_name(cell)]
            assert after == [f'check("{name}")' for name in exercises], student_file
            assert sum(cell.source.startswith("check(") for cell in cells) == len(exercises)


def test_the_loader_skips_the_set_up_and_check_cells():
    module = loader.load_script(paths.EXERCISES / "diffusion" / "03_ddpm.py").module
    assert "check" not in vars(module) and "forward_noise" in vars(module)


@pytest.mark.slow
@pytest.mark.parametrize("track", paths.tracks())
def test_every_check_cell_says_what_to_do_on_the_stubs(track):
    for script in paths.solution_scripts(track):
        namespace = namespace_of(paths.EXERCISES, track, script.stem)
        for exercise in percent.exercises(script):
            result = run_check_cell(namespace, exercise.name)
            assert not result.passed
            assert result.lines[0].startswith(f"· {exercise.name}: 0/"), result
            assert result.lines[1:] == (f"    not done yet: fill in `{exercise.name}` in its cell above",)


def test_a_check_shows_the_count_or_the_first_failing_check():
    namespace = namespace_of(paths.SOLUTIONS, "diffusion", "03_ddpm")
    assert repr(run_check_cell(namespace, "forward_noise")) == "✓ forward_noise: 2/2 checks pass"
    right = namespace["forward_noise"]
    namespace["forward_noise"] = lambda schedule, x0, t, noise: right(schedule, x0, t, noise) + 0.1
    result = run_check_cell(namespace, "forward_noise")
    assert not result.passed
    assert result.lines[0] == "✗ forward_noise: 1/2 checks pass"  # a shift keeps the variance
    assert "yours" in repr(result) and "expected" in repr(result)


def test_a_check_never_runs_the_hidden_tests(monkeypatch):
    from grader import suites

    files = []
    real_run = suites.run
    monkeypatch.setattr(suites, "run", lambda file, *args: files.append(file) or real_run(file, *args))
    run_check_cell(namespace_of(paths.SOLUTIONS, "diffusion", "03_ddpm"), "reverse_step")
    assert files == [paths.EXERCISES / "diffusion" / "test_03_ddpm.py"]


def test_while_nbgrader_autogrades_a_check_runs_nothing(monkeypatch):
    from grader import suites

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(suites, "run", lambda *args: pytest.fail("a check ran tests under nbgrader"))
    result = run_check_cell(namespace_of(paths.EXERCISES, "diffusion", "03_ddpm"), "reverse_step")
    assert "not checked here while nbgrader autogrades" in repr(result)


def test_an_unknown_exercise_is_named_with_the_notebook_s_exercises():
    namespace = namespace_of(paths.EXERCISES, "diffusion", "03_ddpm")
    with pytest.raises(ValueError, match="diffusion/03_ddpm has no exercise 'no_such_exercise'; it has: "
                                         "forward_noise, ddpm_loss, reverse_step, ddpm_sample"):
        run_check_cell(namespace, "no_such_exercise")


def test_a_check_run_before_its_exercise_cell_says_to_run_that_first():
    namespace = namespace_of(paths.EXERCISES, "diffusion", "03_ddpm")
    del namespace["reverse_step"]
    result = run_check_cell(namespace, "reverse_step")
    assert not result.passed and "`reverse_step` is not defined yet: run the exercise's cell" in repr(result)


def test_a_set_up_cell_of_another_version_of_the_course_says_so():
    with pytest.raises(ValueError, match="no notebook 'diffusion/99_gone'"):
        notebook_checks.exercise_checks("diffusion/99_gone", {})


def test_without_the_reference_a_check_says_which_exercise_to_do_first(monkeypatch):
    """An installed course ships no solutions to stand in for an unfinished exercise."""
    monkeypatch.setattr(paths, "has_solutions", lambda: False)
    namespace = namespace_of(paths.EXERCISES, "diffusion", "03_ddpm")
    solved = namespace_of(paths.SOLUTIONS, "diffusion", "03_ddpm")
    namespace["ddpm_sample"] = solved["ddpm_sample"]  # done, but it calls reverse_step: still a stub
    result = run_check_cell(namespace, "ddpm_sample")
    assert not result.passed
    assert "`ddpm_sample` uses `reverse_step`, not done yet: do it first" in repr(result)


def test_the_set_up_cell_installs_the_course_where_it_is_missing(monkeypatch):
    import importlib.util

    commands = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "course" else
                        real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    monkeypatch.setenv("COURSE_PIP_SOURCE", "course.whl")
    exec(check_cells.setup_cell("diffusion", "03_ddpm").source, {})
    assert [command[1:] for command in commands] == [["-m", "pip", "install", "--quiet", "course.whl"]]

    commands.clear()
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    exec(check_cells.setup_cell("diffusion", "03_ddpm").source, {})
    assert commands == []  # installed already: nothing to do
