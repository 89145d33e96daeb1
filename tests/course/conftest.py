"""Fixtures for the tests of the shared library `course`."""

import os

# Headless plotting; must be set before anything imports matplotlib.pyplot.
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _strict_dtype_promotion():
    """Fail on implicit dtype promotion, so the library never relies on it."""
    with jax.numpy_dtype_promotion("strict"):
        yield
