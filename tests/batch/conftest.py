"""Fixtures of the batch tests: the built qwen2vl-export and the tiny traced checkpoint.

They reuse the export suite's helpers (tests/export/export_support.py) and the
shared tiny checkpoint (tests/tiny_fixture.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
for folder in (TESTS_DIR, TESTS_DIR / "export"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from export_support import find_exporter, run_tool  # noqa: E402
from tiny_fixture import tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def exporter() -> Path:
    """Path of the qwen2vl-export executable under test."""
    return find_exporter()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Folder of the tiny checkpoint, with the traced archive qwen2vl.pt and config.json inside."""
    return tiny_checkpoint(tmp_path_factory, run_tool)
