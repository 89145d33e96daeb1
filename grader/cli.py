"""The `grader` command: `grader status`, `grader sync`, `grader nbgrader build|validate`."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from grader import paths

STYLE = {"passing": "green", "failing": "red", "todo": "yellow", "no tests": "dim"}


def cmd_status(args: argparse.Namespace) -> int:
    from grader.status import track_status

    console = Console()
    with console.status("running the visible tests..."):
        board = [row for track in (args.tracks or paths.tracks()) for row in track_status(track, args.target)]
    table = Table(title="Your progress")
    table.add_column("exercise", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tests", justify="right", no_wrap=True)
    table.add_column("first failing check", overflow="ellipsis", no_wrap=True, max_width=60)
    script = None
    for row in board:
        if (row.track, row.script) != script:
            script = (row.track, row.script)
            table.add_section()
            table.add_row(f"[bold]{row.track}/{row.script}[/bold]", "", "", "")
        style = STYLE[row.state]
        note = row.hint if row.state == "failing" else ""
        table.add_row(f"  {row.exercise}", f"[{style}]{row.state}[/{style}]", f"{row.passed}/{row.total}", note)
    console.print(table)
    done = sum(row.state == "passing" for row in board)
    console.print(f"{done} of {len(board)} exercises passing.")
    upcoming = next((row for row in board if row.state in ("todo", "failing")), None)
    if upcoming is not None:
        file = f"exercises/{upcoming.track}/{upcoming.script}"
        console.print(
            f"Next: {upcoming.exercise} in {file}.py; check it with\n"
            f"  uv run pytest exercises/{upcoming.track}/test_{upcoming.script}.py --exercise {upcoming.exercise}",
            soft_wrap=True,
        )
    return 0


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


def cmd_nbgrader_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from grader.nbgrader_course import build

    for line in build(Path(args.course), args.tracks or paths.tracks()):
        print(line)
    print(f"Next: cd {args.course} && nbgrader generate_assignment TRACK (see the README's instructor guide).")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader", description="Course tooling for students and instructors.")
    commands = parser.add_subparsers(dest="command", required=True)

    status = commands.add_parser("status", help="board of every track and exercise: todo / failing / passing")
    status.add_argument("tracks", nargs="*", help="only these tracks")
    status.add_argument("--target", default="exercises", help="exercises (default), solutions, or a folder")
    status.set_defaults(run=cmd_status)

    sync = commands.add_parser("sync", help="regenerate exercises/ from solutions/")
    sync.add_argument("tracks", nargs="*", help="only these tracks")
    sync.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    sync.set_defaults(run=cmd_sync)

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
    except FileNotFoundError as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
