"""The `grader` command: `grader status`, `grader sync`."""

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
    table = Table(title="Your progress", show_lines=False)
    for column in ("track", "exercise", "status", "tests", "next step"):
        table.add_column(column)
    next_hint = None
    with console.status("running the visible tests..."):
        board = [row for track in (args.tracks or paths.tracks()) for row in track_status(track, args.target)]
    for row in board:
        style = STYLE[row.state]
        table.add_row(f"{row.track}/{row.script}", row.exercise, f"[{style}]{row.state}[/{style}]",
                      f"{row.passed}/{row.total}", row.hint)
        if next_hint is None and row.state in ("todo", "failing"):
            next_hint = row
    console.print(table)
    done = sum(row.state == "passing" for row in board)
    console.print(f"{done} of {len(board)} exercises passing.")
    if next_hint is not None:
        console.print(
            f"Next: {next_hint.exercise} in exercises/{next_hint.track}/{next_hint.script}.py; check it with\n"
            f"  uv run pytest exercises/{next_hint.track}/test_{next_hint.script}.py --exercise {next_hint.exercise}"
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
