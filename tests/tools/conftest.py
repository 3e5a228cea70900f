"""Shared fixtures for the tests of tools/.

Under ctest, QWEN2VL_FIXTURE_DIR points to the fixtures that ctest built: the tiny
checkpoint in $QWEN2VL_FIXTURE_DIR/tiny and its trace tiny/qwen2vl.pt. Without it
(a plain `pytest tests/tools`), the session builds both in a temporary folder with
tools/make_tiny_model.py and tools/trace_model.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_fixture import tiny_checkpoint  # noqa: E402

from tool_runner import run_tool
from example_inputs import ModelSizes  # noqa: I001 (tool_runner puts tools/ on sys.path first)

# Two threads at most: the machines that run these tests have two cores, shared with other suites.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Folder of the tiny checkpoint, with the traced archive qwen2vl.pt inside."""
    return tiny_checkpoint(tmp_path_factory, run_tool)


@pytest.fixture(scope="session")
def traced_path(tiny_dir) -> Path:
    return tiny_dir / "qwen2vl.pt"


@pytest.fixture(scope="session")
def eager_model(tiny_dir):
    """The tiny checkpoint in unmodified transformers with eager attention."""
    from hf_reference import load_reference_model

    return load_reference_model(str(tiny_dir), "eager")


@pytest.fixture(scope="session")
def sdpa_model(tiny_dir):
    """The tiny checkpoint in unmodified transformers with SDPA attention."""
    from hf_reference import load_reference_model

    return load_reference_model(str(tiny_dir), "sdpa")


@pytest.fixture(scope="session")
def sizes(eager_model) -> ModelSizes:
    return ModelSizes.from_config(eager_model.config)
