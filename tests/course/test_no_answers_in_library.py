"""The library (`course/`) and the training scripts (`pretraining/`) hold no exercise's
answer: a student reading them must not find the code an exercise asks for, and the shipped
models must be trained by the reference answers, not by a copy that can drift from them.

An answer is the code between `### BEGIN SOLUTION` and `### END SOLUTION` in a function of
`solutions/`. Each function of the library is compared with each answer after renaming
the variables of each statement in order of appearance (so that renaming is no disguise),
as sequences of syntax nodes; short answers (a formula of a line or two, which any wrapper of a schedule
must also compute) are left out.
"""

import ast
import difflib
import functools
from pathlib import Path

import pytest

from grader import paths

LIBRARY = [paths.REPO_ROOT / "course", paths.REPO_ROOT / "pretraining"]
MIN_NODES = 40  # answers shorter than this (in syntax nodes) are formulas, not code to copy
MAX_SIMILARITY = 0.85  # the old copy of `mask_tokens` in the protein trainer scored 0.91
MODULES = frozenset({"jax", "jnp", "np", "eqx", "optax", "math", "diffrax"})


class _RenameVariables(ast.NodeTransformer):
    def __init__(self):
        self.names: dict[str, str] = {}

    def _placeholder(self, name: str) -> str:
        return name if name in MODULES else self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(id=self._placeholder(node.id), ctx=node.ctx)

    def visit_arg(self, node: ast.arg) -> ast.arg:
        return ast.arg(arg=self._placeholder(node.arg))


def syntax_nodes(statements: list[ast.stmt]) -> list[str]:
    """The statements' syntax nodes in order, with their names, attributes and constants,
    the variables of each statement renamed in order of appearance in it."""
    nodes = []
    for statement in statements:
        renamed = _RenameVariables().visit(ast.parse(ast.unparse(statement)))
        for node in ast.walk(renamed):
            nodes.append(type(node).__name__)
            for field in ("id", "attr", "value"):
                value = getattr(node, field, None)
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    nodes.append(repr(value))
    return nodes


def answers_in(path: Path) -> list[tuple[str, list[str]]]:
    """`(function name, syntax nodes of its answer)` for each function of a solution script
    with a solution region."""
    text = path.read_text()
    regions, start = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() == "### BEGIN SOLUTION":
            start = number
        elif line.strip() == "### END SOLUTION" and start is not None:
            regions.append((start, number))
            start = None
    answers = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef):
            body = [s for s in node.body if any(begin < s.lineno < end for begin, end in regions)]
            if body:
                answers.append((node.name, syntax_nodes(body)))
    return answers


def functions_in(text: str) -> list[tuple[str, list[str]]]:
    """`(name, syntax nodes of its body without the docstring)` for each function in `text`."""
    functions = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef):
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            functions.append((node.name, syntax_nodes(body)))
    return functions


@functools.cache
def all_answers() -> list[tuple[str, list[str]]]:
    return [(f"{path.relative_to(paths.REPO_ROOT)}::{name}", nodes)
            for path in sorted(paths.SOLUTIONS.glob("*/*.py")) for name, nodes in answers_in(path)]


def copied_answers(text: str) -> list[str]:
    """The library functions in `text` that repeat an answer, with the answer and the score."""
    found = []
    for name, nodes in functions_in(text):
        for answer, answer_nodes in all_answers():
            if len(answer_nodes) < MIN_NODES:
                continue
            matcher = difflib.SequenceMatcher(None, answer_nodes, nodes, autojunk=False)
            if matcher.real_quick_ratio() > MAX_SIMILARITY and matcher.quick_ratio() > MAX_SIMILARITY:
                if (similarity := matcher.ratio()) > MAX_SIMILARITY:
                    found.append(f"{name} repeats {answer} (similarity {similarity:.2f})")
    return found


@pytest.mark.parametrize("path", sorted(p for folder in LIBRARY for p in folder.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(paths.REPO_ROOT)))
def test_no_library_module_defines_an_exercises_answer(path):
    copies = copied_answers(path.read_text())
    where = path.relative_to(paths.REPO_ROOT)
    assert not copies, (f"{where}: {'; '.join(copies)}. Take it from the reference solution "
                        "(grader.loader.load_script) in a training script, or write what the library needs otherwise.")


def test_a_reworded_copy_of_an_answer_is_found():
    # The protein trainer's own corruption once, next to the exercise's `mask_tokens`.
    copy = '''
def choose_and_corrupt(tokens, key):
    choose_key, how_key, residue_key = jax.random.split(key, 3)
    is_residue = (tokens > EOS) & (tokens != MASK) & (tokens != PAD)
    chosen = is_residue & (jax.random.uniform(choose_key, tokens.shape) < MASK_RATE)
    how = jax.random.uniform(how_key, tokens.shape)
    random_residues = jnp.asarray(AMINO_ACID_TOKENS)[jax.random.randint(residue_key, tokens.shape, 0, 20)]
    corrupted = jnp.where(how < MASK_TOKEN_RATE, MASK,
                          jnp.where(how < MASK_TOKEN_RATE + RANDOM_TOKEN_RATE, random_residues, tokens))
    return jnp.where(chosen, corrupted, tokens), chosen
'''
    assert any("mask_tokens" in found for found in copied_answers(copy))
