"""Shared fixtures of the export tests: the tiny checkpoint, its exports and transformers' reference.

Under ctest, QWEN2VL_FIXTURE_DIR points to the fixtures that ctest built (the tiny
checkpoint in $QWEN2VL_FIXTURE_DIR/tiny and its trace tiny/qwen2vl.pt), and
QWEN2VL_EXE to the built qwen2vl-export. Without QWEN2VL_FIXTURE_DIR, the session
builds both fixtures in a temporary folder with tools/make_tiny_model.py and
tools/trace_model.py. Without QWEN2VL_EXE, the tests run build/qwen2vl-export of
the source tree.

The tests share one export per task, made with --no-validate because they compare
the graphs with transformers themselves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_fixture import tiny_checkpoint  # noqa: E402

from export_support import GENERATION_GRIDS, find_exporter, reference_generation, run_exporter, run_tool
from example_inputs import ModelSizes  # noqa: I001 (export_support puts tools/ on sys.path first)

# Two threads at most: the machines that run these tests have two cores, shared with other suites.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def exporter() -> Path:
    """Path of the qwen2vl-export executable under test."""
    return find_exporter()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """Folder of the tiny checkpoint, with the traced archive qwen2vl.pt inside."""
    return tiny_checkpoint(tmp_path_factory, run_tool)


@pytest.fixture(scope="session")
def traced_path(tiny_dir) -> Path:
    return tiny_dir / "qwen2vl.pt"


class TaskExports:
    """Exports of the traced fixture, one per task, made on first request."""

    def __init__(self, exporter: Path, traced_path: Path, root: Path) -> None:
        self.exporter = exporter
        self.traced_path = traced_path
        self.root = root
        self.processes = {}

    def process(self, task: str):
        """Return the finished export process of `task`, running the export on the first call."""
        if task not in self.processes:
            output_dir = self.root / task
            self.processes[task] = run_exporter(
                self.exporter, "export", "--model", self.traced_path, "--task", task, "--no-validate", output_dir
            )
        return self.processes[task]

    def output_dir(self, task: str) -> Path:
        """Return the output folder of `task`, or fail the calling test when the export failed."""
        process = self.process(task)
        if process.returncode != 0:
            pytest.fail(f"export of task {task} exited with {process.returncode}: {process.stderr.strip()}")
        return self.root / task


@pytest.fixture(scope="session")
def task_exports(exporter, traced_path, tmp_path_factory) -> TaskExports:
    return TaskExports(exporter, traced_path, tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="session")
def eager_model(tiny_dir):
    """The tiny checkpoint in unmodified transformers with eager attention, as the trace was made."""
    from hf_reference import load_reference_model

    return load_reference_model(str(tiny_dir), "eager")


@pytest.fixture(scope="session")
def sizes(eager_model) -> ModelSizes:
    return ModelSizes.from_config(eager_model.config)


@pytest.fixture(scope="session")
def generation_cases(eager_model, sizes) -> dict:
    """Prompts by name (see GENERATION_GRIDS) with transformers' greedy continuation of each."""
    return {
        name: reference_generation(eager_model, sizes, grids, first_seed=100 * index)
        for index, (name, grids) in enumerate(GENERATION_GRIDS.items())
    }
