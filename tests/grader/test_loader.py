"""The loader runs a script's definitions, never its demos, and survives broken cells."""

from __future__ import annotations

import os
import time

import pytest

from grader import notebooks
from grader.loader import NotebookNewerWarning, load_script, resolve_source

SCRIPT = '''# %%
import math

SCALE = 3
Vector = list

# %% nbgrader={"grade_id": "area", "solution": true}
def area(r):
    return SCALE * r * r

# %%
raise RuntimeError("a demo cell must not run at test time")
trained = area(2)
'''


def write(tmp_path, text, name="01_demo.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_definitions_run_and_demos_do_not(tmp_path):
    loaded = load_script(write(tmp_path, SCRIPT))
    module = loaded.module
    assert module.area(2) == 12 and module.SCALE == 3 and module.Vector is list and module.math
    assert not hasattr(module, "trained")
    assert loaded.problems == []


def test_a_syntax_error_costs_only_its_cell(tmp_path):
    broken = SCRIPT.replace("    return SCALE * r * r", "    return SCALE * r *")
    loaded = load_script(write(tmp_path, broken))
    assert not hasattr(loaded.module, "area") and loaded.module.SCALE == 3
    assert loaded.problems == ["SyntaxError at line 9: invalid syntax"]


def test_an_error_while_defining_is_reported_with_its_line(tmp_path):
    loaded = load_script(write(tmp_path, "import no_such_module_here\n\ndef f():\n    return 1\n"))
    assert loaded.module.f() == 1
    assert loaded.problems[0].startswith("ModuleNotFoundError at line 1")


def test_overrides_replace_names_after_loading(tmp_path):
    module = load_script(write(tmp_path, SCRIPT), overrides={"SCALE": 10}).module
    assert module.area(1) == 10


def test_a_newer_different_notebook_wins_with_a_warning(tmp_path):
    script = write(tmp_path, SCRIPT)
    notebook = notebooks.read_notebook(script)
    notebook.cells[1].source = notebook.cells[1].source.replace("SCALE * r * r", "r")
    (tmp_path / "01_demo.ipynb").write_text(notebooks.to_ipynb(notebook))
    old = time.time() - 60
    os.utime(script, (old, old))
    with pytest.warns(NotebookNewerWarning, match="jupytext --sync"):
        assert resolve_source(script) == tmp_path / "01_demo.ipynb"
    assert load_script(tmp_path / "01_demo.ipynb").module.area(5) == 5


def test_a_newer_identical_notebook_changes_nothing(tmp_path, recwarn):
    script = write(tmp_path, SCRIPT)
    (tmp_path / "01_demo.ipynb").write_text(notebooks.to_ipynb(notebooks.read_notebook(script)))
    old = time.time() - 60
    os.utime(script, (old, old))
    assert resolve_source(script) == script
    assert not [w for w in recwarn if issubclass(w.category, NotebookNewerWarning)]


def test_an_unreadable_notebook_is_a_clear_error(tmp_path):
    path = write(tmp_path, "{ this is not json", name="01_demo.ipynb")
    with pytest.raises(ValueError, match="is not a readable notebook"):
        load_script(path)


def test_a_notebook_loads_without_its_magics_and_demos(tmp_path):
    import nbformat

    cells = [nbformat.v4.new_code_cell("%matplotlib inline\nimport math\n!echo hello"),
             nbformat.v4.new_markdown_cell("def not_code(): pass"),
             nbformat.v4.new_code_cell("def double(x):\n    return 2 * x\n\nprint(double(21))")]
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    loaded = load_script(path)
    assert loaded.problems == []
    assert loaded.module.double(4) == 8 and loaded.module.math.pi > 3
    assert not hasattr(loaded.module, "not_code")
