"""Every fuzz target gets a time limit that grows with its example budget (make fuzz runs far more examples than
pytest-timeout's 300 s default allows)."""

from __future__ import annotations

import pytest

from tests.fuzz.budget import EXAMPLES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(300 + EXAMPLES // 10))
