"""Shared test configuration: the influxd fixture plugin and paths to real data."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.influxd_fixture", "tests.mosquitto_fixture"]

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Folder of the permissively licensed real recordings copied into the repo."""
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """``../shared/data/real``; tests using the GPL records skip when it is absent."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"{SHARED_REAL} is absent (GPL records are not copied into the repo)")
    return SHARED_REAL
