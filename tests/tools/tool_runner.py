"""Locations of tools/ and a runner for its scripts, shared by conftest.py and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TOOLS_DIR = Path(os.environ.get("QWEN2VL_TOOLS_DIR", Path(__file__).resolve().parents[2] / "tools"))
PYTHON = os.environ.get("QWEN2VL_PYTHON", sys.executable)

if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))


def run_tool(script: str, *arguments: str | Path) -> subprocess.CompletedProcess:
    """Run a script of tools/ with the test interpreter and return the finished process."""
    command = [PYTHON, str(TOOLS_DIR / script), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)
