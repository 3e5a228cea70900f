"""Export of a plain trace, whose vision encoder froze the number and size of images.

tools/trace_model.py --plain-vision traces transformers' own vision code (metadata
"vision": "static"). The exporter must reject that archive with exit code 4 and one
error line naming both fixes, and leave no output folder behind. With
--allow-static-vision it must export the archive with a warning that the report
records.
"""

from __future__ import annotations

import json

import pytest

from export_support import error_lines, run_exporter, run_tool

LOG_PREFIXES = ("info:", "warning:", "error:")



@pytest.fixture(scope="module")
def plain_trace(tiny_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("plain") / "qwen2vl.pt"
    traced = run_tool("trace_model.py", tiny_dir, "--output", output, "--plain-vision")
    if traced.returncode != 0:
        pytest.fail(f"trace_model.py --plain-vision exited with {traced.returncode}: {traced.stderr.strip()}")
    return output


@pytest.fixture(scope="module")
def rejected(plain_trace, exporter, tmp_path_factory):
    """(finished process, output folder) of the export without --allow-static-vision."""
    output_dir = tmp_path_factory.mktemp("rejected") / "out"
    return run_exporter(exporter, "export", "--model", plain_trace, output_dir), output_dir


@pytest.fixture(scope="module")
def allowed(plain_trace, exporter, tmp_path_factory):
    """(finished process, output folder) of the export with --allow-static-vision and validation."""
    output_dir = tmp_path_factory.mktemp("allowed") / "out"
    return run_exporter(exporter, "export", "--model", plain_trace, "--allow-static-vision", output_dir), output_dir


def test_plain_trace_exits_with_code_4(rejected):
    process, _ = rejected
    assert process.returncode == 4, process.stderr


def test_plain_trace_error_is_one_line(rejected):
    process, _ = rejected
    assert len(error_lines(process.stderr)) == 1, process.stderr
    for line in process.stderr.splitlines():
        assert line.startswith(LOG_PREFIXES), f"stderr line is not a log message: {line!r}"


def test_plain_trace_error_names_both_fixes(rejected):
    process, _ = rejected
    message = " ".join(error_lines(process.stderr))
    assert "tools/trace_model.py" in message
    assert "--allow-static-vision" in message


def test_plain_trace_leaves_no_output(rejected):
    _, output_dir = rejected
    assert not output_dir.exists()
    leftovers = [path.name for path in output_dir.parent.iterdir() if path.name.startswith(f".{output_dir.name}.")]
    assert leftovers == []


def test_allow_static_vision_exits_zero(allowed):
    process, _ = allowed
    assert process.returncode == 0, process.stderr


def test_allow_static_vision_warns(allowed):
    process, _ = allowed
    warnings = [line for line in process.stderr.splitlines() if line.startswith("warning:")]
    assert any("static vision" in line for line in warnings), process.stderr


def test_allow_static_vision_report_records_warning(allowed):
    _, output_dir = allowed
    report = json.loads((output_dir / "export_report.json").read_text())
    warnings = [warning for graph in report["graphs"] for warning in graph["warnings"]]
    assert any("static vision" in warning for warning in warnings), warnings


def test_allow_static_vision_declares_fixed_image_dims(allowed, plain_trace):
    """The image axes take the traced sizes, and the text axes stay dynamic."""
    import onnx

    _, output_dir = allowed
    graph = onnx.load(str(output_dir / "model.onnx"), load_external_data=False).graph
    shapes = {value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
              for value in graph.input}
    grids = json.loads(_archive_metadata(plain_trace))["traced_image_grids"]["text_generation_with_past"]
    assert shapes["pixel_values"][0] == sum(t * h * w for t, h, w in grids), shapes
    assert isinstance(shapes["pixel_values"][1], int), shapes
    assert shapes["image_grid_thw"][0] == len(grids), shapes
    assert isinstance(shapes["input_ids"][0], str), shapes
    assert isinstance(shapes["input_ids"][1], str), shapes


def _archive_metadata(path) -> str:
    """The qwen2vl_export.json text inside a TorchScript archive."""
    import torch

    extra = {"qwen2vl_export.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    return extra["qwen2vl_export.json"]
