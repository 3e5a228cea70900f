"""Exporting the same archive twice, into folders of different names, gives byte-identical graphs."""

from __future__ import annotations

import pytest

from export_support import run_exporter

TASKS = ["feature-extraction", "feature-extraction-with-past", "text-generation", "text-generation-with-past"]
TASKS += ["image-text-to-text"]


def graph_files(output_dir) -> list[str]:
    """Return the .onnx and .onnx_data files under `output_dir`, relative to it, sorted."""
    return sorted(str(path.relative_to(output_dir)) for path in output_dir.rglob("*.onnx*") if path.is_file())


@pytest.mark.parametrize("task", TASKS)
def test_second_export_is_byte_identical(task, task_exports, exporter, traced_path, tmp_path):
    first_dir = task_exports.output_dir(task)
    second_dir = tmp_path / f"again-{task}"
    process = run_exporter(
        exporter, "export", "--model", traced_path, "--task", task, "--no-validate", second_dir
    )
    assert process.returncode == 0, process.stderr

    files = graph_files(first_dir)
    assert graph_files(second_dir) == files
    for name in files:
        assert (second_dir / name).read_bytes() == (first_dir / name).read_bytes(), f"{name} differs"
