"""The `grader` command: status, watch, check, grade, gradescope, solutions-branch, sync, nbgrader, site."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from grader import paths


def cmd_status(args: argparse.Namespace) -> int:
    from grader import board, submissions
    from grader.status import track_status

    console = Console()
    with console.status("running the visible tests..."):
        rows = [row for track in (args.tracks or paths.tracks()) for row in track_status(track, args.target)]
    console.print(board.render(rows, submissions.target_root(args.target), full=args.all))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from grader import watch

    return watch.run(args.tracks or paths.tracks(), args.target)


def cmd_sync(args: argparse.Namespace) -> int:
    from grader.sync import sync

    lines = sync(args.tracks or None, check=args.check)
    for line in lines:
        print(line)
    if args.check and lines:
        print("Generated files are stale: run `grader sync` and commit the result.", file=sys.stderr)
        return 1
    if not lines:
        print("exercises are up to date.")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from grader.checking import check

    track, _, exercise = args.what.partition("/")
    lines, passing = check(track, exercise or None, args.target)
    for line in lines:
        print(line)
    return 0 if passing else 1


def cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grader.grading import grade_all
    from grader.remote import Limits, SandboxRefused

    console = Console()
    limits = Limits(per_test_s=args.test_timeout, total_s=args.timeout, memory_mb=args.memory)
    out = Path(args.out)
    if args.unsafe:
        console.print("[bold red]--unsafe[/]: student code runs without the sandbox; do not use these grades "
                      "for credit unless each submission runs in a container of its own.")
    try:
        grades = grade_all([Path(folder) for folder in args.submissions], out, tracks=args.track or None,
                           jobs=args.jobs, force=args.force, limits=limits, unsafe=args.unsafe,
                           scheduler=args.scheduler,
                           log=lambda line: console.print(line))
    except SandboxRefused as refused:
        console.print(f"[bold red]Not graded.[/] {refused}")
        return 3
    table = Table(title=f"Grades (details in {out}/<student>/)")
    for column in ("student", "tracks", "score", "seconds"):
        table.add_column(column, justify="right" if column in ("score", "seconds") else "left")
    for grade in grades:
        table.add_row(grade.student, ", ".join(grade.tracks), f"{grade.score:g} / {grade.max_score:g}",
                      f"{grade.seconds:.1f}")
    console.print(table)
    console.print(f"Wrote {out / 'grades.csv'}.")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from grader.grading import sandbox_missing
    from grader.remote import Limits

    missing = sandbox_missing(Limits())
    if missing is None:
        print("This machine can sandbox student code: `grader grade` grades for credit here.")
        return 0
    print(f"This machine cannot sandbox student code: it lacks {missing}.\n"
          "`grader grade` refuses to grade here unless given --unsafe (see docs/grading.md, \"The sandbox\").")
    return 3


def cmd_gradescope(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grader.gradescope import build_zip

    zip_path = build_zip(Path(args.out), args.track or [])
    print(f"Wrote {zip_path}: upload it as the autograder of a Gradescope programming assignment.")
    return 0


def cmd_solutions_branch(args: argparse.Namespace) -> int:
    from grader.solutions_branch import BRANCH, update

    commit = update(base=args.base)
    if commit is None:
        print(f"The {BRANCH} branch is up to date.")
    else:
        print(f"{BRANCH} is now {commit[:12]}. See the answers with `git checkout {BRANCH}`, or next to your "
              f"work with `git worktree add ../answers {BRANCH}`.")
    return 0


def cmd_nbgrader_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grader.nbgrader_course import build

    for line in build(Path(args.course), args.tracks or paths.tracks()):
        print(line)
    print(f"Next: cd {args.course} && nbgrader generate_assignment TRACK (see docs/instructors.md).")
    return 0


def cmd_nbgrader_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grader.nbgrader_course import validate

    failed = False
    for notebook in args.notebooks:
        problems = validate(Path(notebook))
        failed = failed or bool(problems)
        print("\n\n".join(problems) if problems else f"{notebook}: all tests pass.")
    return 1 if failed else 0


def cmd_site(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from grader.site.build import SiteError, build

    start = time.perf_counter()
    try:
        built = build(Path(args.out), quick=args.quick, tracks=args.tracks or None)
    except SiteError as error:
        print(f"grader site: {error}", file=sys.stderr)
        return 1
    print(f"{len(built.chapters)} chapters built into {args.out}/ in {time.perf_counter() - start:.0f} s; "
          f"open {args.out}/index.html")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Course tooling for students and instructors.")
    commands = parser.add_subparsers(dest="command", required=True)

    status = commands.add_parser("status", help="board of every track and exercise: todo / failing / passing")
    status.add_argument("tracks", nargs="*", help="only these tracks")
    status.add_argument("--target", default="exercises", help="exercises (default), solutions, or a folder")
    status.add_argument("--all", action="store_true", help="every exercise of every notebook, not only the current one")
    status.set_defaults(run=cmd_status)

    watch = commands.add_parser("watch", help="re-run a script's visible tests each time it (or its notebook) is saved")
    watch.add_argument("tracks", nargs="*", help="only these tracks")
    watch.add_argument("--target", default="exercises", help="exercises (default), or a folder laid out like it")
    watch.set_defaults(run=cmd_watch)

    sync = commands.add_parser("sync", help="regenerate exercises/ from solutions/")
    sync.add_argument("tracks", nargs="*", help="only these tracks")
    sync.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    sync.set_defaults(run=cmd_sync)

    check = commands.add_parser("check", help="run the visible tests of a track (or one exercise), briefly")
    check.add_argument("what", metavar="TRACK[/EXERCISE]", help="e.g. diffusion or diffusion/reverse_step")
    check.add_argument("--target", default="exercises", help="exercises (default), solutions, or a folder")
    check.set_defaults(run=cmd_check)

    grade = commands.add_parser("grade", help="grade submissions with the hidden tests, in a sandbox")
    grade.add_argument("submissions", nargs="+",
                       help="folders laid out like exercises/, or folders of them (one per student)")
    grade.add_argument("--track", action="append", help="grade only this track (repeatable; default: "
                       "the tracks each submission has files for)")
    grade.add_argument("-j", "--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    grade.add_argument("--out", default="grades", help="where results go (default ./grades)")
    grade.add_argument("--force", action="store_true", help="grade again what was graded already")
    grade.add_argument("--test-timeout", type=float, default=120.0, help="seconds per test (default 120)")
    grade.add_argument("--timeout", type=float, default=900.0, help="seconds per submission (default 900)")
    grade.add_argument("--memory", type=int, default=4096, help="memory limit per submission in MB (default 4096)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on a Dask cluster, e.g. tcp://10.0.0.5:8786 (see docs/grading.md)")
    grade.add_argument("--unsafe", action="store_true",
                       help="grade without the OS sandbox, where the machine has none (not for credit)")
    grade.set_defaults(run=cmd_grade)

    sandbox = commands.add_parser("sandbox", help="say whether this machine can sandbox student code for grading")
    sandbox.set_defaults(run=cmd_sandbox)

    gradescope = commands.add_parser("gradescope", help="build the Gradescope autograder zip")
    gradescope.add_argument("--track", action="append", help="the track(s) the assignment grades (default: "
                            "whatever tracks each submission has files for)")
    gradescope.add_argument("--out", default="autograder.zip", help="where to write the zip")
    gradescope.set_defaults(run=cmd_gradescope)

    branch = commands.add_parser("solutions-branch",
                                 help="create or update the `solutions` git branch: exercises/ with the answers")
    branch.add_argument("--base", default="HEAD", help="the commit to build it from (default HEAD)")
    branch.set_defaults(run=cmd_solutions_branch)

    site = commands.add_parser("site", help="build the course website: every chapter executed, guides, models")
    site.add_argument("tracks", nargs="*", help="only these tracks (default: all)")
    site.add_argument("--out", default="site", help="folder to write the HTML into (default: site)")
    site.add_argument("--quick", action="store_true", help="short training (COURSE_QUICK=1), as CI builds it")
    site.set_defaults(run=cmd_site)

    nbgrader = commands.add_parser("nbgrader", help="run the course with nbgrader")
    nbgrader_commands = nbgrader.add_subparsers(dest="nbgrader_command", required=True)
    build = nbgrader_commands.add_parser(
        "build", help="write an nbgrader course directory (config + source notebooks) from solutions/")
    build.add_argument("tracks", nargs="*", help="tracks to make assignments of (default: all)")
    build.add_argument("--course", required=True, help="the nbgrader course directory to write into")
    build.set_defaults(run=cmd_nbgrader_build)
    validate = nbgrader_commands.add_parser(
        "validate", help="like `nbgrader validate`, but exits 1 when a test fails")
    validate.add_argument("notebooks", nargs="+", help="notebooks to run and check")
    validate.set_defaults(run=cmd_nbgrader_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
