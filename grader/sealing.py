"""Seals on the grader's result files: a re-run trusts only a result this grader wrote.

`grader grade` keeps each student's `result.json` to skip them on a re-run. Anyone who can
write to `--out` could plant a result there, so every result carries an HMAC-SHA256 of its
content under a key kept outside `--out`: by default in the instructor's configuration
folder (`~/.config/jax-genai-course/grader.key`, created on first use, readable by its
owner only), or in the file `GRADER_KEY_FILE` names. Student code never sees it: it runs
in a sandbox that holds neither the home folder nor `--out`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

KEY_VARIABLE = "GRADER_KEY_FILE"
SEAL_FIELD = "seal"


def key_file() -> Path:
    if os.environ.get(KEY_VARIABLE):
        return Path(os.environ[KEY_VARIABLE])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "jax-genai-course" / "grader.key"


def key() -> bytes:
    """The sealing key, made on first use (32 random bytes, owner-only)."""
    path = key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path.with_name(path.name + ".partial"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
        os.replace(path.with_name(path.name + ".partial"), path)
    return path.read_bytes()


def _mac(record: dict, secret: bytes) -> str:
    content = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret, content, hashlib.sha256).hexdigest()


def seal(record: dict) -> dict:
    """`record` with its seal added."""
    return {**record, SEAL_FIELD: _mac(record, key())}


def unsealed(record: object) -> dict | None:
    """The record without its seal if the seal is right; None for anything else."""
    if not isinstance(record, dict) or not isinstance(record.get(SEAL_FIELD), str):
        return None
    content = {name: value for name, value in record.items() if name != SEAL_FIELD}
    return content if hmac.compare_digest(record[SEAL_FIELD], _mac(content, key())) else None
