"""Shared test fixtures: where the real logs live, and a skip that says why."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = REPO / "sample_logs"
# Real training logs from public repositories sit beside the checkout (../shared), in CI too.
REAL_LOGS = REPO.parent / "shared" / "real_logs"


@pytest.fixture
def real_logs() -> Path:
    if not REAL_LOGS.is_dir():
        pytest.skip(f"real logs not found at {REAL_LOGS} (../shared/real_logs beside the checkout)")
    return REAL_LOGS
