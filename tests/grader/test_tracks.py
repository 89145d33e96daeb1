"""Every track: solutions pass every visible and hidden test; every test fails on the stubs."""

from __future__ import annotations

import pytest

from grader import paths, percent

TRACKS = paths.tracks()


def test_tracks_exist():
    assert "diffusion" in TRACKS


@pytest.fixture(scope="module", params=TRACKS)
def track(request):
    return request.param


def _test_folders(track: str) -> list[str]:
    return [str(paths.EXERCISES / track), str(paths.HIDDEN_TESTS / track)]


@pytest.mark.slow
def test_solutions_pass_every_test(track, run_tests):
    outcomes, output = run_tests(*_test_folders(track), "--target=solutions")
    assert outcomes, output
    failing = [o["nodeid"] + "\n" + o["message"] for o in outcomes if o["outcome"] != "passed"]
    assert not failing, "\n\n".join(failing)


@pytest.mark.slow
def test_every_test_fails_on_the_stubs(track, run_tests):
    outcomes, output = run_tests(*_test_folders(track), "--target=exercises")
    assert outcomes, output
    passing = [o["nodeid"] for o in outcomes if o["outcome"] != "failed"]
    assert not passing, f"these tests do not fail on the untouched stubs: {passing}"
    not_todo = [o["nodeid"] + "\n" + o["message"] for o in outcomes if not o["todo"]]
    assert not not_todo, "these fail on the stubs for another reason than the stub:\n" + "\n".join(not_todo)


def test_every_exercise_has_visible_and_hidden_tests(track):
    for script in paths.solution_scripts(track):
        names = {e.name for e in percent.exercises(script)}
        assert names, f"{script} has no exercise"
        for folder in (paths.EXERCISES / track, paths.HIDDEN_TESTS / track):
            test_file = folder / f"test_{script.stem}.py"
            assert test_file.exists(), f"missing {test_file}"
            text = test_file.read_text()
            untested = [n for n in names if f'exercise("{n}")' not in text]
            assert not untested, f"{paths.relative(test_file)} tests none of {untested}"


def test_hidden_tests_carry_points_and_exercises(track):
    import ast

    for test_file in (paths.HIDDEN_TESTS / track).glob("test_*.py"):
        for node in ast.parse(test_file.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                markers = {ast.unparse(d).split("(")[0] for d in node.decorator_list}
                assert {"pytest.mark.exercise", "pytest.mark.points"} <= markers, (
                    f"{test_file.name}::{node.name} needs @pytest.mark.exercise and @pytest.mark.points"
                )


def test_tracks_come_in_course_order_everywhere():
    assert TRACKS == list(paths.COURSE_ORDER)
    from grader.site.pages import track_summaries

    assert list(track_summaries()) == TRACKS, "the README's table of tracks is not in course order"
