"""Import the definitions of a percent script (or notebook) without running its demos.

Tests see a script's imports, functions, classes and UPPER_CASE (or CapWords)
constants; every other top-level statement (training loops, plots, prints) is demo
code and is skipped. Each cell is parsed on its own, so a syntax error in one cell
costs only the names defined there, and is reported with its line.
"""

from __future__ import annotations
import __future__

import ast
import hashlib
import linecache
import re
import sys
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader import notebooks, paths, percent

_CONSTANT = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")
PROBLEMS = "__grader_problems__"


class NotebookNewerWarning(UserWarning):
    """The notebook was edited after its paired script; the notebook is what gets tested."""


@dataclass
class LoadedScript:
    """A script's definitions as a module, and what went wrong while loading it."""

    path: Path
    module: types.ModuleType
    problems: list[str] = field(default_factory=list)


def resolve_source(script: Path) -> Path:
    """The file to test for `NN_topic.py`: the script, or its notebook if that was edited later.

    A notebook that is newer than its script *and* has different code wins, with a warning
    (pair them with `jupytext --sync`). Either file alone is used as it is.
    """
    notebook = script.with_suffix(".ipynb")
    if not script.exists():
        return notebook if notebook.exists() else script
    if not notebook.exists() or notebook.stat().st_mtime <= script.stat().st_mtime:
        return script
    try:
        same = _code_of(notebook) == _code_of(script)
    except Exception as error:  # an unreadable notebook must not outweigh a good script
        warnings.warn(f"{paths.relative(notebook)} is newer than {script.name} but cannot be read "
                      f"({type(error).__name__}): testing the script.", NotebookNewerWarning, stacklevel=2)
        return script
    if same:
        return script
    warnings.warn(
        f"{paths.relative(notebook)} was edited after {script.name} and they differ: testing "
        f"the notebook. Run `jupytext --sync {paths.relative(notebook)}` to pair them again.",
        NotebookNewerWarning,
        stacklevel=2,
    )
    return notebook


def _code_of(path: Path) -> list[str]:
    """The code cells of a script or notebook, to compare a notebook with its script."""
    nb = notebooks.read_notebook(path)
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


def read_source(path: Path) -> list[percent.Cell]:
    """The cells of a script or notebook (ValueError for a file that is not a readable notebook)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{paths.relative(path)} does not exist.")
    if path.suffix == ".ipynb":  # read as JSON: importing Jupytext would cost seconds per process
        return percent.notebook_cells(path)
    return percent.read_cells(path.read_text(encoding="utf-8", errors="replace"))


def load_script(path: Path, *, overrides: Mapping[str, object] | None = None) -> LoadedScript:
    """Execute the definitions of a script or notebook in a fresh module.

    `overrides` replace names after loading: grading fills the answers of the *other*
    exercises from the reference, so one missing answer never fails later exercises.
    """
    return load_cells(read_source(path), Path(path), overrides=overrides)


def load_cells(cells: list[percent.Cell], path: Path, *, overrides: Mapping[str, object] | None = None
               ) -> LoadedScript:
    """Execute the definitions in `cells` (of the script at `path`, named in messages) in a fresh module.

    A statement that raises, even `SystemExit` or `KeyboardInterrupt`, is reported in
    `problems` and skipped: it costs only the names it would have defined.
    """
    text = "\n".join(cell.source for cell in cells)
    digest = hashlib.sha1(f"{path}:{text}:{sorted(overrides or {})}".encode()).hexdigest()[:12]
    module = types.ModuleType(f"submission_{path.stem}_{digest}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickling look modules up here
    _remember_source(str(path), cells)
    loaded = LoadedScript(path, module)

    flags = 0
    for cell in cells:
        first_line = cell.first_line
        try:
            tree = ast.parse(cell.source, filename=str(path))
        except SyntaxError as error:
            line = first_line + (error.lineno or 1) - 1
            loaded.problems.append(f"SyntaxError at line {line}: {error.msg}")
            continue
        except (ValueError, RecursionError, MemoryError) as error:  # e.g. a null byte, absurd nesting
            loaded.problems.append(f"{type(error).__name__} in the cell at line {first_line}: {error}")
            continue
        ast.increment_lineno(tree, first_line - 1)
        for statement in tree.body:
            if not _is_definition(statement):
                continue
            if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
                for alias in statement.names:
                    flags |= getattr(__future__, alias.name, __future__.annotations).compiler_flag
                continue
            try:
                code = compile(ast.Module([statement], []), str(path), "exec", flags=flags)
                exec(code, module.__dict__)
            except BaseException as error:  # noqa: B036 -- the student's code may raise anything
                loaded.problems.append(f"{type(error).__name__} at line {statement.lineno}: {error}")
    module.__dict__.update(overrides or {})
    module.__dict__[PROBLEMS] = loaded.problems  # for error reports on the student's functions
    return loaded


def _remember_source(filename: str, cells: list[percent.Cell]) -> None:
    """Let tracebacks quote the lines of a loaded script, notebooks included."""
    lines: list[str] = []
    for cell in cells:
        while len(lines) < cell.first_line - 1:
            lines.append("\n")
        lines += [line + "\n" for line in cell.source.splitlines()]
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


def _is_definition(statement: ast.stmt) -> bool:
    if isinstance(
        statement, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ):
        return True
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return all(isinstance(t, ast.Name) and _CONSTANT.match(t.id) for t in targets)
    return False
