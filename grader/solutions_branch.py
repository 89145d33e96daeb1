"""`grader solutions-branch`: a `solutions` git branch whose `exercises/` holds the worked answers.

Self-learners check it out (or `git worktree add ../answers solutions`) to compare their
work with the answers, and the visible tests pass there. The branch is written with git's
plumbing into a private index, so the current checkout and its changes are never touched.
Each update is a commit on top of the previous `solutions` commit, with the commit of
`main` it was made from as second parent.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from grader import notebooks, paths

BRANCH = "solutions"


def _git(repo: Path, *args: str, env: dict | None = None, input: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, input=input)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def answer_files(repo: Path) -> dict[str, str]:
    """exercises/<track>/NN_topic.py and .ipynb, with the answers in, as on the branch."""
    files = {}
    for track in paths.tracks(repo / "solutions"):
        for script in paths.solution_scripts(track, repo / "solutions"):
            target = f"exercises/{track}/{script.stem}"
            files[f"{target}.py"] = script.read_text(encoding="utf-8")
            files[f"{target}.ipynb"] = notebooks.to_ipynb(notebooks.read_notebook(script))
    return files


def update(repo: Path = paths.REPO_ROOT, base: str = "HEAD") -> str | None:
    """Create or update the branch from `base`; return the new commit, or None if nothing changed.

    The answers come from `solutions/` as it is in the working tree of `repo`.
    """
    base_commit = _git(repo, "rev-parse", "--verify", f"{base}^{{commit}}")
    try:
        previous = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{BRANCH}")
    except RuntimeError:
        previous = None
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, "read-tree", base_commit, env=index)
        for path, text in answer_files(repo).items():
            blob = _git(repo, "hash-object", "-w", "--stdin", input=text)
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
        tree = _git(repo, "write-tree", env=index)
    if previous and _git(repo, "rev-parse", f"{previous}^{{tree}}") == tree:
        return None
    parents = ["-p", previous, "-p", base_commit] if previous else ["-p", base_commit]
    message = f"Worked answers in exercises/ (made from {base_commit[:12]} by `grader solutions-branch`)"
    commit = _git(repo, "commit-tree", tree, *parents, "-m", message)
    _git(repo, "update-ref", f"refs/heads/{BRANCH}", commit, *([previous] if previous else []))
    return commit
