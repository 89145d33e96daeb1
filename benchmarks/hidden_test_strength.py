"""How many plausible wrong answers the hidden suites catch (a mutation score).

For every exercise of the reference solutions, makes one-edit mutants of its answer (a
sign, an operator, a comparison, an index, an axis, a constant, `mean` for `sum`, `sqrt`
for `square`, a dropped minus), and runs that exercise's hidden tests on each (in-process,
which is fine for our own code: no sandbox is needed to grade the reference's mutants).
A mutant is *caught* when at least one of its exercise's tests fails. Prints, per track,
caught / made, and lists every survivor with its edit, so that a hidden suite can be
given a check of the property the survivor violates. Some survivors are equivalent
(the edit changes nothing a test could see, e.g. in a branch that the exercise never
takes); those are named in the listing's notes by whoever reviews it.

    uv run python benchmarks/hidden_test_strength.py [--tracks diffusion warmup] [--per-exercise 6]
"""

from __future__ import annotations

import argparse
import ast
import copy
import random
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.results import Table, save
from grader import paths, percent

BINARY_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
COMPARE_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq}
NAME_SWAPS = {"mean": "sum", "sum": "mean", "sqrt": "square", "square": "sqrt", "exp": "expm1",
              "log": "log1p", "max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum",
              "cos": "sin", "sin": "cos", "split": "fold_in", "tanh": "sigmoid", "argmax": "argmin",
              "cumsum": "cumprod", "transpose": "conj", "softmax": "log_softmax"}
TEST_TIMEOUT_S = 120


@dataclass(frozen=True)
class Mutant:
    track: str
    stem: str
    exercise: str
    edit: str  # what was changed, for a person reading the listing
    script: str  # the whole mutated reference script


def mutation_sites(tree: ast.AST, first_line: int = 0) -> Iterator[tuple[str, Callable | None, int]]:
    """(description, edit, walk position) of every one-edit mutation of a tree.

    `edit` changes the node at that position of `ast.walk` (None: drop a unary minus).
    Signatures and annotations are left alone (a default that no test uses is no mistake).
    """
    untouchable = {id(inner) for node in ast.walk(tree)
                   for part in _signature_parts(node) for inner in ast.walk(part)}
    # axis=-1 on a 2-D array is axis=1: its minus is left alone, the axis itself is moved to 0.
    untouchable |= {id(inner) for node in ast.walk(tree) if _is_axis_keyword(node)
                    for inner in ast.walk(node.value)}
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in untouchable:
            continue
        line = first_line + getattr(node, "lineno", 0)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY_SWAPS:
            new = BINARY_SWAPS[type(node.op)]
            yield (f"line {line}: {type(node.op).__name__} -> {new.__name__}",
                   lambda n, new=new: setattr(n, "op", new()), index)
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE_SWAPS:
            new = COMPARE_SWAPS[type(node.ops[0])]
            yield (f"line {line}: {type(node.ops[0]).__name__} -> {new.__name__}",
                   lambda n, new=new: n.ops.__setitem__(0, new()), index)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            yield f"line {line}: minus dropped", None, index
        elif isinstance(node, ast.Attribute) and node.attr in NAME_SWAPS:
            new = NAME_SWAPS[node.attr]
            yield f"line {line}: .{node.attr} -> .{new}", lambda n, new=new: setattr(n, "attr", new), index
        elif _is_axis_keyword(node):
            axis = ast.literal_eval(node.value)
            new = 0 if axis != 0 else -1
            yield (f"line {line}: axis={axis} -> axis={new}",
                   lambda n, new=new: setattr(n, "value", ast.Constant(new)), index)
        elif (isinstance(node, ast.Constant) and type(node.value) in (int, float)
              and not isinstance(node.value, bool)):
            new = node.value + 1 if isinstance(node.value, int) else node.value * 2 or 1.0
            yield f"line {line}: {node.value!r} -> {new!r}", lambda n, new=new: setattr(n, "value", new), index


def _is_axis_keyword(node: ast.AST) -> bool:
    """An `axis=` keyword with a literal integer (`axis=1`, `axis=-1`)."""
    if not (isinstance(node, ast.keyword) and node.arg == "axis"):
        return False
    value = node.value.operand if isinstance(node.value, ast.UnaryOp) and isinstance(node.value.op, ast.USub) \
        else node.value
    return isinstance(value, ast.Constant) and type(value.value) is int


def _signature_parts(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.FunctionDef):
        return [node.args] + ([node.returns] if node.returns else [])
    if isinstance(node, ast.AnnAssign):
        return [node.annotation]
    return []


def drop_minus(tree: ast.AST, index: int) -> ast.AST:
    """The tree with the unary minus at walk position `index` replaced by its operand."""
    target = list(ast.walk(tree))[index]

    class Replace(ast.NodeTransformer):
        def visit_UnaryOp(self, node):
            self.generic_visit(node)
            return node.operand if node is target else node

    return Replace().visit(tree)


def exercise_mutants(track: str, script: Path, per_exercise: int, rng: random.Random) -> Iterator[Mutant]:
    """Up to `per_exercise` mutants (sampled) of each exercise's answer in a reference script."""
    cells = percent.read_cells(script.read_text(encoding="utf-8"))
    for position, cell in enumerate(cells):
        if not cell.exercise:
            continue
        marker, body = cell.source.split("\n", 1)
        tree = ast.parse(body)
        sites = list(mutation_sites(tree, cell.first_line))
        for description, edit, index in rng.sample(sites, min(per_exercise, len(sites))):
            mutated = copy.deepcopy(tree)  # same walk order as `tree`
            if edit is None:
                mutated = drop_minus(mutated, index)
            else:
                edit(list(ast.walk(mutated))[index])
            new_cells = [c.source for c in cells]
            new_cells[position] = marker + "\n" + ast.unparse(ast.fix_missing_locations(mutated)) + "\n"
            yield Mutant(track, script.stem, cell.exercise, description, "\n".join(new_cells) + "\n")


class Outcomes:
    """Pytest plugin: did every selected test pass?"""

    def __init__(self):
        self.failed, self.ran = 0, 0

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.failed:
            self.ran += report.when == "call"
            self.failed += report.failed


def caught(mutant: Mutant, folder: Path) -> bool | None:
    """True when a hidden test of the mutant's exercise fails; None when no test ran."""
    target = folder / mutant.track
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{mutant.stem}.py").write_text(mutant.script, encoding="utf-8")
    outcomes = Outcomes()
    test_file = paths.HIDDEN_TESTS / mutant.track / f"test_{mutant.stem}.py"
    signal.alarm(TEST_TIMEOUT_S)
    try:
        pytest.main([str(test_file), "--target", str(folder), "--in-process", "--exercise", mutant.exercise,
                     "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header", "-o",
                     "addopts=", "--tb=no", "-W", "ignore"], plugins=[outcomes])
    except TimeoutError:
        return True  # a mutant that hangs is caught by the grader's time limit
    finally:
        signal.alarm(0)
    return None if outcomes.ran == 0 else outcomes.failed > 0


def _raise_timeout(*_) -> None:
    raise TimeoutError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", nargs="*", default=paths.tracks())
    parser.add_argument("--per-exercise", type=int, default=6, help="mutants made per exercise (sampled)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _raise_timeout)
    rng = random.Random(args.seed)
    totals, survivors, untested = {}, [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for track in args.tracks:
            made = killed = 0
            for script in paths.solution_scripts(track):
                for number, mutant in enumerate(exercise_mutants(track, script, args.per_exercise, rng)):
                    outcome = caught(mutant, Path(scratch) / f"{track}-{script.stem}-{number}")
                    if outcome is None:
                        untested.append(mutant)
                        continue
                    made += 1
                    killed += outcome
                    if not outcome:
                        survivors.append(mutant)
            totals[track] = (killed, made)
    seconds = time.perf_counter() - start
    settings = f"{args.per_exercise} per exercise at most, seed {args.seed}"
    print(f"\nMutants caught by the hidden suites ({settings}, {seconds:.0f} s):")
    for track, (killed, made) in totals.items():
        print(f"  {track:10s} {killed:4d} / {made:4d}  ({killed / max(made, 1):.0%})")
    print("\nSurvivors (a test of the property each violates is missing, unless the edit is equivalent):")
    for mutant in survivors:
        print(f"  {mutant.track}/{mutant.stem} {mutant.exercise}: {mutant.edit}")
    for mutant in untested:
        print(f"  (no hidden test selected for {mutant.track}/{mutant.stem} {mutant.exercise})")
    killed, made = sum(k for k, _ in totals.values()), sum(m for _, m in totals.values())
    listed = lambda mutants: [{"track": m.track, "script": m.stem, "exercise": m.exercise, "edit": m.edit}
                              for m in mutants]
    save("hidden_test_strength", [
        Table("Mutants caught by the hidden suites", ["track", "caught", "made", "caught (%)"],
              [[track, k, m, 100 * k / m if m else None] for track, (k, m) in totals.items()],
              note=f"one-edit mutants of the reference answers, {settings}; {seconds:.0f} s"),
        Table("Survivors", ["exercise", "edit"],
              [[f"{m.track}/{m.stem} {m.exercise}", m.edit] for m in survivors],
              note="a test of the property each violates is missing, unless the edit is equivalent"),
    ], summary=f"{killed} of {made} mutants caught ({killed / max(made, 1):.0%}), {len(survivors)} survivors",
         figures={"caught_made": {track: list(counts) for track, counts in totals.items()},
                  "survivors": listed(survivors), "untested": listed(untested)})


if __name__ == "__main__":
    main()
