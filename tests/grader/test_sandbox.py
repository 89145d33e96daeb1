"""The sandbox that student code runs in when it is graded, seen from inside; and the refusal without one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest

from grader import grading, paths, remote

BAD = Path(__file__).parent / "bad_submissions"
pytestmark = pytest.mark.xdist_group("grade")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # `look_around` runs in the sandbox, sent by value


def look_around(grades_folder: str) -> dict:
    """What a student's code can see and do in its sandbox."""
    observed = {"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
    observed["solutions"] = paths.SOLUTIONS.exists()
    observed["hidden"] = sorted(os.listdir(paths.HIDDEN_TESTS)) if paths.HIDDEN_TESTS.exists() else []
    observed["grades"] = Path(grades_folder).exists()
    observed["capabilities"] = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                                    if line.startswith("CapEff"))
    for name, path in (("course", paths.REPO_ROOT / "course" / "__init__.py"), ("tmp", Path("/tmp/mine.txt")),
                       ("site-packages", Path(os.__file__).parent / "planted.py")):
        try:
            path.write_text("# planted\n")
            observed[f"writes {name}"] = True
        except OSError:
            observed[f"writes {name}"] = False
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2).close()
        observed["network"] = True
    except OSError:
        observed["network"] = False
    return observed


@pytest.fixture(scope="module")
def sandboxes():
    made = remote.Sandboxes(remote.Limits(per_test_s=60, total_s=120), ["diffusion"], required=True, slot=200)
    yield made
    made.close()


@pytest.mark.slow
def test_student_code_sees_no_answers_no_grades_no_one_else_and_no_network(sandboxes, tmp_path):
    submission = remote.Submission(sandboxes, BAD / "good")
    try:
        seen = submission.for_exercise("diffusion", "01_langevin", "mixture_score").evaluate(look_around,
                                                                                             str(tmp_path))
    finally:
        submission.close()
    assert seen["solutions"] is False and seen["hidden"] == []  # neither the reference nor the hidden tests
    assert seen["grades"] is False  # nor the folder the grades go to
    assert seen["pids"] == [1]  # alone in its PID namespace: no classmate's process to signal or read
    assert seen["capabilities"] == "0000000000000000"
    if os.getuid() == 0:
        assert remote.UID_BASE <= seen["uid"] < remote.UID_BASE + 4000  # an unprivileged uid of its own
    assert seen["writes tmp"] is True  # a private /tmp
    assert not seen["writes course"] and not seen["writes site-packages"]
    assert seen["network"] is False
    assert not (Path(os.__file__).parent / "planted.py").exists()


def test_grading_for_credit_is_refused_without_a_sandbox(monkeypatch, tmp_path):
    monkeypatch.setattr(grading, "sandbox_missing", lambda limits: "Linux namespaces (switched off here)")
    with pytest.raises(remote.SandboxRefused, match="switched off here.*--unsafe"):
        grading.grade_all([BAD / "good"], tmp_path / "grades", tracks=["diffusion"], progress=False)
    assert not (tmp_path / "grades").exists()


@pytest.mark.slow
def test_unsafe_grades_without_the_sandbox(tmp_path):
    (grade,) = grading.grade_all([BAD / "good"], tmp_path / "grades", tracks=["diffusion"], jobs=1, unsafe=True,
                                 limits=remote.Limits(per_test_s=60, total_s=300), progress=False)
    assert grade.score == 10


def test_grader_sandbox_says_whether_this_machine_can_grade_for_credit():
    done = subprocess.run([sys.executable, "-m", "grader.cli", "sandbox"], capture_output=True, text=True,
                          timeout=120, cwd=paths.REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "can sandbox student code" in done.stdout


def test_a_checkout_under_tmp_stays_readable_in_the_sandbox_and_its_hidden_folder_hidden(tmp_path):
    """The private /tmp must not cover the grader's own files when they live under /tmp."""
    from grader import namespaces

    checkout = tmp_path / "checkout"  # pytest's tmp_path is under /tmp
    (checkout / "grader" / "hidden").mkdir(parents=True)
    (checkout / "grader" / "hidden" / "test_answers.py").write_text("ANSWER = 42\n")
    (checkout / "course").mkdir()
    (checkout / "course" / "__init__.py").write_text("")
    policy = namespaces.default_policy(checkout, memory_mb=1024, uid=None)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            namespaces.enter(policy)
            seen = [(checkout / "course" / "__init__.py").exists(), os.listdir(checkout / "grader" / "hidden"),
                    Path("/tmp/scratch.txt").write_text("mine") == 4]
            os.write(write_end, repr(seen).encode())
        except BaseException as error:
            os.write(write_end, repr(error).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as channel:
        answer = channel.read()
    os.waitpid(child, 0)
    assert answer == "[True, [], True]"
