"""Bad input to `qwen2vl-export export`: one error line, the documented exit
code, no hang, and nothing written."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from export_support import error_lines, run_exporter

USAGE, INVALID_INPUT, UNSUPPORTED = 2, 3, 4
# Generous for a loaded CI machine; a rejected input takes about a second here.
BAD_INPUT_TIMEOUT_SECONDS = 30


def copy_config(tiny_dir: Path, folder: Path, edit) -> Path:
    config = json.loads((tiny_dir / "config.json").read_text())
    edit(config)
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


def unrelated_module(path: Path) -> None:
    """A valid TorchScript archive of a module that is not a Qwen2-VL trace."""

    class Doubler(torch.nn.Module):
        def forward(self, x):
            return x * 2

    torch.jit.save(torch.jit.trace(Doubler(), torch.ones(2)), str(path))


def make_case(name: str, tiny_dir: Path, folder: Path) -> list[str]:
    """Write the files of case `name` into `folder` and return the export arguments."""
    model = tiny_dir / "qwen2vl.pt"
    config = tiny_dir / "config.json"
    if name == "empty_model":
        model = folder / "empty.pt"
        model.write_bytes(b"")
    elif name == "random_bytes":
        model = folder / "random.pt"
        model.write_bytes(bytes(range(256)) * 8)
    elif name == "zip_not_torchscript":
        model = folder / "other.pt"
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("readme.txt", "not a model")
    elif name == "truncated_model":
        model = folder / "truncated.pt"
        data = (tiny_dir / "qwen2vl.pt").read_bytes()
        model.write_bytes(data[: len(data) // 2])
    elif name == "unrelated_module":
        model = folder / "doubler.pt"
        unrelated_module(model)
    elif name == "missing_config":
        config = folder / "absent.json"
    elif name == "config_wrong_type":
        config = copy_config(tiny_dir, folder, lambda c: c["text_config"].update(hidden_size="64"))
    elif name == "config_negative_size":
        config = copy_config(tiny_dir, folder, lambda c: c["text_config"].update(num_hidden_layers=-2))
    elif name == "config_huge_layers":
        config = copy_config(tiny_dir, folder, lambda c: c["text_config"].update(num_hidden_layers=10**9))
    elif name == "config_of_other_checkpoint":
        config = copy_config(tiny_dir, folder, lambda c: c["text_config"].update(num_hidden_layers=3))
    elif name == "config_mrope_mismatch":
        config = copy_config(
            tiny_dir, folder, lambda c: c["text_config"]["rope_parameters"].update(mrope_section=[2, 2, 2])
        )
    arguments = ["export", "--model", model, "--config", config]
    extra = {
        "odd_image_grid": ["--image-grid", "1,3,4"],
        "opset_17": ["--opset", "17"],
        "unknown_task": ["--task", "translation"],
        "huge_sequence": ["--sequence-length", "100000000000"],
    }
    return arguments + extra.get(name, [])


# case, exit code, a fragment of the error line
CASES = [
    ("empty_model", INVALID_INPUT, "empty"),
    ("random_bytes", INVALID_INPUT, "not a TorchScript archive"),
    ("zip_not_torchscript", INVALID_INPUT, "TorchScript"),
    ("truncated_model", INVALID_INPUT, "truncated.pt"),
    ("unrelated_module", INVALID_INPUT, "no method"),
    ("missing_config", INVALID_INPUT, "absent.json"),
    ("config_wrong_type", INVALID_INPUT, "text_config.hidden_size"),
    ("config_negative_size", INVALID_INPUT, "num_hidden_layers"),
    ("config_huge_layers", INVALID_INPUT, "num_hidden_layers is 1000000000; it must be an integer from 1 to 1024"),
    ("config_of_other_checkpoint", INVALID_INPUT, "config.json does not match the archive: method"),
    ("config_mrope_mismatch", INVALID_INPUT, "mrope_section"),
    ("odd_image_grid", USAGE, "multiples of spatial_merge_size"),
    ("opset_17", UNSUPPORTED, "opset"),
    ("unknown_task", USAGE, "translation"),
    ("huge_sequence", USAGE, "--sequence-length"),
]


@pytest.mark.parametrize("name, exit_code, fragment", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_rejected(name, exit_code, fragment, exporter, tiny_dir, tmp_path):
    output_dir = tmp_path / "out"
    arguments = make_case(name, tiny_dir, tmp_path)
    # Bad input is rejected before any real work, so it must not take long.
    process = run_exporter(exporter, *arguments, output_dir, timeout=BAD_INPUT_TIMEOUT_SECONDS)
    errors = error_lines(process.stderr)

    assert process.returncode == exit_code, process.stderr
    assert len(errors) == 1, process.stderr
    assert fragment in errors[0]
    assert not output_dir.exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_non_empty_output_needs_force(exporter, tiny_dir, tmp_path):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "keep.txt").write_text("earlier export")
    process = run_exporter(exporter, "export", "--model", tiny_dir / "qwen2vl.pt", "--no-validate", output_dir)

    assert process.returncode == USAGE, process.stderr
    assert "--force" in process.stderr
    assert (output_dir / "keep.txt").read_text() == "earlier export"


def test_validation_mismatch_names_output_and_difference(exporter, tiny_dir, tmp_path):
    """An --atol no float32 export can meet: exit 5, the worst output in the one error line, nothing written."""
    output_dir = tmp_path / "out"
    report = tmp_path / "report.json"
    process = run_exporter(exporter, "-q", "export", "--model", tiny_dir / "qwen2vl.pt", "--task", "text-generation",
                           "--atol", "1e-12", "--report", report, output_dir)
    errors = error_lines(process.stderr)

    assert process.returncode == 5, process.stderr
    assert len(errors) == 1, process.stderr
    assert "beyond --atol 1e-12: logits of model.onnx at" in errors[0]
    assert "max abs diff" in errors[0]
    assert not output_dir.exists()
    assert json.loads(report.read_text())["status"] == "validation mismatch"


def copy_checkpoint(tiny_dir: Path, folder: Path) -> Path:
    """A copy of the tiny trace and its config in `folder`, returned as the .pt path."""
    folder.mkdir(parents=True)
    for name in ("qwen2vl.pt", "config.json"):
        (folder / name).write_bytes((tiny_dir / name).read_bytes())
    return folder / "qwen2vl.pt"


@pytest.mark.parametrize("target", ["model_folder", "parent_folder"])
def test_output_containing_model_is_rejected(target, exporter, tiny_dir, tmp_path):
    model = copy_checkpoint(tiny_dir, tmp_path / "ckpt" / "model")
    model_bytes = model.read_bytes()
    output_dir = model.parent if target == "model_folder" else model.parent.parent
    process = run_exporter(exporter, "export", "--no-validate", "--force", "--model", model, output_dir,
                           timeout=BAD_INPUT_TIMEOUT_SECONDS)
    errors = error_lines(process.stderr)

    assert process.returncode == USAGE, process.stderr
    assert len(errors) == 1, process.stderr
    assert f"contains the model {model}" in errors[0]
    assert model.read_bytes() == model_bytes


def test_report_over_input_is_rejected(exporter, tiny_dir, tmp_path):
    model = copy_checkpoint(tiny_dir, tmp_path / "ckpt")
    config_text = (model.parent / "config.json").read_text()
    process = run_exporter(exporter, "export", "--no-validate", "--model", model, "--report",
                           model.parent / "config.json", tmp_path / "out", timeout=BAD_INPUT_TIMEOUT_SECONDS)

    assert process.returncode == USAGE, process.stderr
    assert "is the config, which the report would overwrite" in process.stderr
    assert (model.parent / "config.json").read_text() == config_text
    assert not (tmp_path / "out").exists()


def test_unwritable_report_fails_before_export(exporter, tiny_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    process = run_exporter(exporter, "export", "--no-validate", "--model", tiny_dir / "qwen2vl.pt", "--report",
                           blocker / "report.json", tmp_path / "out", timeout=BAD_INPUT_TIMEOUT_SECONDS)
    errors = error_lines(process.stderr)

    assert process.returncode == 6, process.stderr
    assert len(errors) == 1, process.stderr
    assert "cannot write the report" in errors[0]
    assert "pass --report with a file in a writable folder" in errors[0]
    assert not (tmp_path / "out").exists()


def test_non_utf8_path_is_exported(exporter, tiny_dir, tmp_path):
    """Latin-1 file names are valid on Linux; the reports replace the bytes that are not UTF-8."""
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/mod\xe8le"))
    model = copy_checkpoint(tiny_dir, folder)
    output_dir = Path(os.fsdecode(bytes(tmp_path) + b"/sortie-\xe9"))
    report = tmp_path / "report.json"
    process = run_exporter(exporter, "export", "--no-validate", "--task", "text-generation", "--model", model,
                           "--report", report, output_dir)

    assert process.returncode == 0, process.stderr
    assert (output_dir / "model.onnx").is_file()
    recorded = json.loads(report.read_text(encoding="utf-8"))["inputs"]["model"]["path"]
    assert "\ufffd" in recorded
