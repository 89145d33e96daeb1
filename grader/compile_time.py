"""Seconds JAX has spent tracing, lowering and compiling in this process, for `grader grade`'s timings.

Both sides count: the trusted grader (the reference's programs) and the student's sandboxed
process, which reports its count with each reply (a figure for the timings, never for a score).
"""

from __future__ import annotations

_state = {"seconds": 0.0, "counting": False}


def _count(event: str, duration: float, **_) -> None:
    if event.startswith("/jax/core/compile/"):
        _state["seconds"] += duration


def seconds() -> float:
    """The seconds counted so far; the first call starts the count."""
    if not _state["counting"]:
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(_count)
        _state["counting"] = True
    return _state["seconds"]
