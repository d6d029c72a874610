"""The code stays ruff-clean, ruff-formatted and mypy --strict-clean (tests included): part
of the test command, so CI enforces it.

Both checkers start in the background as soon as collection finds these tests (conftest's
`start_quality_checks`): mypy takes seconds of one core, which overlap the other tests
instead of adding to the suite's time; each test here waits for its checker's verdict."""

from __future__ import annotations

import pytest
from conftest import quality_check


def test_ruff_clean() -> None:
    code, output = quality_check("ruff")
    assert code == 0, output


def test_ruff_format_clean() -> None:
    code, output = quality_check("ruff-format")
    assert code == 0, output + "\nrun: ruff format src tests bench"


def test_mypy_strict_clean() -> None:
    code, output = quality_check("mypy")
    assert code == 0, output


def test_public_api_is_curated() -> None:
    import herd

    # Adding to the public surface is a decision: change this list on purpose.
    assert herd.__all__ == [
        "__version__",
        "HerdError",
        "MapOutcome",
        "Queue",
        "RunOutcome",
        "Store",
        "map",
        "run_batch",
    ]
    for name in herd.__all__:
        assert getattr(herd, name) is not None
    with pytest.raises(AttributeError):
        herd.nonexistent  # noqa: B018
