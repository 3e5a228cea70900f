"""The tiny checkpoint shared by the Python test suites."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest


def tiny_checkpoint(tmp_path_factory, run_tool: Callable) -> Path:
    """Return the tiny checkpoint folder with its trace qwen2vl.pt inside.

    Under ctest, QWEN2VL_FIXTURE_DIR names the folder the fixtures
    tiny_checkpoint and tiny_traced built. Run directly, the suite builds its
    own copy in a temporary folder with tools/make_tiny_model.py and
    tools/trace_model.py.
    """
    root = os.environ.get("QWEN2VL_FIXTURE_DIR")
    if root:
        tiny = Path(root) / "tiny"
        for name in ("config.json", "model.safetensors", "qwen2vl.pt"):
            if not (tiny / name).is_file():
                pytest.fail(f"{tiny / name} is missing; run the ctest fixtures tiny_checkpoint and tiny_traced first")
        return tiny

    tiny = tmp_path_factory.mktemp("fixtures") / "tiny"
    created = run_tool("make_tiny_model.py", tiny)
    assert created.returncode == 0, created.stderr
    traced = run_tool("trace_model.py", tiny, "--output", tiny / "qwen2vl.pt")
    assert traced.returncode == 0, traced.stderr
    return tiny
