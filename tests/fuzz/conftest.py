"""Every fuzz target gets a time limit that grows with its example budget (make fuzz runs far more examples than
pytest-timeout's 300 s default allows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.budget import EXAMPLES

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest hook sees the whole session's items: only this folder's are fuzz targets.
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300 + EXAMPLES // 10))
