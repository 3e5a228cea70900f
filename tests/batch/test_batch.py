"""`qwen2vl-export batch` end to end on the tiny model: failure isolation,
resuming, interruption, shards, and rejected manifests."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

SUCCESS, USAGE, INVALID_INPUT, ROWS_FAILED, INTERRUPTED = 0, 2, 3, 8, 130


def run_batch(exporter: Path, folder: Path, *arguments: str | Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `qwen2vl-export batch` in `folder` and return the finished process."""
    command = [str(exporter), "batch", *map(str, arguments)]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())


def statuses(report: dict) -> dict[int, str]:
    return {row["row"]: row["status"] for row in report["rows"]}


def leftovers(folder: Path) -> list[str]:
    """Staging folders and temporary files that a finished run must not leave."""
    return sorted(str(path) for path in folder.rglob("*") if ".partial" in path.name)


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Write a manifest of (model, task, output) rows; relative paths are relative to `path`'s folder."""
    lines = ["model,task,output"] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def workspace(tiny_dir, tmp_path) -> Path:
    """A folder holding a copy of the tiny trace with its config, so that tests may break or edit them."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(tiny_dir / "qwen2vl.pt", model_dir / "qwen2vl.pt")
    shutil.copy(tiny_dir / "config.json", model_dir / "config.json")
    return tmp_path


def test_broken_row_fails_alone_and_batch_resumes(exporter, workspace):
    broken = workspace / "broken"
    broken.mkdir()
    good = (workspace / "model" / "qwen2vl.pt").read_bytes()
    (broken / "qwen2vl.pt").write_bytes(good[: len(good) // 3])  # a truncated copy
    shutil.copy(workspace / "model" / "config.json", broken / "config.json")
    manifest = workspace / "rows.csv"
    write_csv(manifest, [
        ("model/qwen2vl.pt", "text-generation", "out/a"),
        ("model/qwen2vl.pt", "feature-extraction", "out/b"),
        ("broken/qwen2vl.pt", "text-generation", "out/c"),
        ("model/qwen2vl.pt", "text-generation-with-past", "out/d"),
        ("model/qwen2vl.pt", "image-text-to-text", "out/e"),
    ])

    first = run_batch(exporter, workspace, "--jobs", "2", manifest)
    assert first.returncode == ROWS_FAILED, first.stderr
    report = read_report(workspace / "batch_report.json")
    assert report["status"] == "failed"
    assert statuses(report) == {1: "ok", 2: "ok", 3: "failed", 4: "ok", 5: "ok"}
    assert report["counts"] == {"ok": 4, "skipped": 0, "failed": 1, "interrupted": 0, "not run": 0}
    failed = report["rows"][2]
    assert failed["exit_code"] == INVALID_INPUT
    assert "truncated" in failed["detail"]
    assert str(broken / "qwen2vl.pt") in failed["detail"]
    assert "truncated" in Path(failed["log"]).read_text()
    for row in report["rows"]:
        if row["status"] == "ok":
            # Validated by ONNX Runtime in the row's own process.
            assert row["export"]["status"] == "ok", row
            assert row["export"]["max_abs_diff"] < 1e-4, row
            assert (Path(row["output"]) / "export_report.json").is_file()
    assert not (workspace / "out" / "c").exists()
    assert leftovers(workspace) == []
    # The summary table names every row and the failed row's error.
    assert "4 ok, 1 failed" in first.stderr
    assert "truncated" in first.stderr

    # Rerun: the four finished rows are up to date, the broken one fails again.
    reports_before = {name: (workspace / "out" / name / "export_report.json").read_bytes() for name in "abde"}
    second = run_batch(exporter, workspace, "--jobs", "2", manifest)
    assert second.returncode == ROWS_FAILED, second.stderr
    assert statuses(read_report(workspace / "batch_report.json")) == {
        1: "skipped", 2: "skipped", 3: "failed", 4: "skipped", 5: "skipped"}
    for name, data in reports_before.items():
        assert (workspace / "out" / name / "export_report.json").read_bytes() == data, f"out/{name} was rewritten"

    # Repair the row: only it runs.
    shutil.copy(workspace / "model" / "qwen2vl.pt", broken / "qwen2vl.pt")
    third = run_batch(exporter, workspace, "--jobs", "2", manifest)
    assert third.returncode == SUCCESS, third.stderr
    assert statuses(read_report(workspace / "batch_report.json")) == {
        1: "skipped", 2: "skipped", 3: "ok", 4: "skipped", 5: "skipped"}


def test_interrupted_batch_keeps_finished_rows_and_resumes(exporter, workspace):
    """Five rows, row 4 broken: SIGINT while row 2 runs, then the same command resumes."""
    (workspace / "broken").mkdir()
    (workspace / "broken" / "qwen2vl.pt").write_bytes(b"not an archive")
    shutil.copy(workspace / "model" / "config.json", workspace / "broken" / "config.json")
    tasks = ["text-generation", "image-text-to-text", "feature-extraction", "text-generation", "text-generation"]
    rows = [{"model": "model/qwen2vl.pt", "task": task, "output": f"out/{index}"}
            for index, task in enumerate(tasks, start=1)]
    rows[3]["model"] = "broken/qwen2vl.pt"
    manifest = workspace / "rows.json"
    manifest.write_text(json.dumps({"rows": rows}))

    command = [str(exporter), "batch", "--report", "reports/run.json", str(manifest)]
    process = subprocess.Popen(command, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_done = workspace / "out" / "1" / "export_report.json"
    deadline = time.monotonic() + 120
    while not first_done.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # Row 2 starts as soon as row 1 ends: interrupt once its process is running.
    while not (workspace / "reports" / "run.logs" / "row-2.log").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the batch ended before it could be interrupted: " + process.stderr.read()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED, stderr
    assert "run the same command again to resume" in stderr

    report = read_report(workspace / "reports" / "run.json")
    assert report["status"] == "interrupted"
    interrupted = statuses(report)
    assert interrupted[1] == "ok"
    assert interrupted[2] in ("interrupted", "ok")
    assert [interrupted[row] for row in (3, 4, 5)] == ["not run"] * 3
    for index in (3, 4, 5):
        assert not (workspace / "out" / str(index)).exists()
    if interrupted[2] == "interrupted":
        assert not (workspace / "out" / "2").exists()
    assert leftovers(workspace) == []

    resumed = run_batch(exporter, workspace, "--report", "reports/run.json", manifest)
    assert resumed.returncode == ROWS_FAILED, resumed.stderr
    final = statuses(read_report(workspace / "reports" / "run.json"))
    assert final[1] == "skipped"
    assert final[2] == ("ok" if interrupted[2] == "interrupted" else "skipped")
    assert final[3] == "ok"
    assert final[4] == "failed"
    assert final[5] == "ok"
    for index in (1, 2, 3, 5):
        assert (workspace / "out" / str(index) / "export_report.json").is_file()
    assert leftovers(workspace) == []


def test_changed_input_is_exported_again_only_with_force(exporter, workspace):
    manifest = workspace / "rows.csv"
    write_csv(manifest, [("model/qwen2vl.pt", "text-generation", "out/a")])
    assert run_batch(exporter, workspace, "--no-validate", manifest).returncode == SUCCESS

    assert statuses(read_report(workspace / "batch_report.json")) == {1: "ok"}

    # Same inputs and settings: up to date. Validation requested now: not up to date.
    again = run_batch(exporter, workspace, "--no-validate", manifest)
    assert again.returncode == SUCCESS, again.stderr
    assert statuses(read_report(workspace / "batch_report.json")) == {1: "skipped"}
    validated = run_batch(exporter, workspace, manifest)
    assert validated.returncode == ROWS_FAILED, validated.stderr
    assert read_report(workspace / "batch_report.json")["rows"][0]["resume_check"] == "the earlier export was not validated"

    config = workspace / "model" / "config.json"
    config.write_text(config.read_text() + "\n")  # same values, different bytes
    rejected = run_batch(exporter, workspace, "--no-validate", manifest)
    assert rejected.returncode == ROWS_FAILED, rejected.stderr
    row = read_report(workspace / "batch_report.json")["rows"][0]
    assert row["exit_code"] == USAGE, row
    assert "--force" in row["detail"], row

    forced = run_batch(exporter, workspace, "--no-validate", "--force", manifest)
    assert forced.returncode == SUCCESS, forced.stderr
    assert statuses(read_report(workspace / "batch_report.json")) == {1: "ok"}


def test_shards_split_one_manifest(exporter, workspace):
    manifest = workspace / "rows.csv"
    write_csv(manifest, [("model/qwen2vl.pt", "text-generation", f"out/{index}") for index in range(1, 5)])
    seen = {}
    for shard in ("0/2", "1/2"):
        result = run_batch(exporter, workspace, "--no-validate", "--shard", shard, manifest)
        assert result.returncode == SUCCESS, result.stderr
        report = read_report(workspace / f"batch_report.shard-{shard.replace('/', '-of-')}.json")
        assert report["shard"] == shard
        seen[shard] = statuses(report)
    assert seen == {"0/2": {1: "ok", 3: "ok"}, "1/2": {2: "ok", 4: "ok"}}


@pytest.mark.parametrize(
    ("name", "content", "arguments", "exit_code", "fragment"),
    [
        ("rows.csv", "model,output\n", [], INVALID_INPUT, "has no rows"),
        ("rows.csv", "model,ouput\na.pt,o\n", [], INVALID_INPUT, 'unknown column "ouput"'),
        ("rows.json", '[{"model": "a.pt"}]', [], INVALID_INPUT, "output is missing"),
        ("rows.csv", "model,output\na.pt,o\nb.pt,o/\n", [], INVALID_INPUT, "give every row its own output folder"),
        ("rows.csv", "model,task,output\na.pt,translation,o\n", [], INVALID_INPUT, 'unknown task "translation"'),
        ("rows.csv", "model,output\na.pt,o\n", ["--shard", "2/2"], USAGE, "0 <= K < N"),
        ("rows.csv", "model,output\na.pt,o\n", ["--jobs", "0"], USAGE, "--jobs"),
        ("absent.csv", None, [], INVALID_INPUT, "manifest not found"),
    ],
)
def test_bad_manifest_is_rejected_before_any_row(exporter, tmp_path, name, content, arguments, exit_code, fragment):
    manifest = tmp_path / name
    if content is not None:
        manifest.write_text(content)
    result = run_batch(exporter, tmp_path, *arguments, manifest, timeout=30)
    assert result.returncode == exit_code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0], result.stderr
    assert not (tmp_path / "o").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ([name] if content is not None else [])


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([("model/qwen2vl.pt", "text-generation", "out/a"), ("model/qwen2vl.pt", "text-generation", "out/a/b")],
         "inside the output"),
        ([("model/qwen2vl.pt", "text-generation", "model")], "contains the model of rows.csv line 2"),
        ([("model/qwen2vl.pt", "text-generation", ".")], "contains the model of rows.csv line 2"),
        ([("model/qwen2vl.pt", "text-generation", "out/a"), ("model/qwen2vl.pt", "text-generation", "alias/a")],
         "through a symbolic link"),
    ],
    ids=["nested", "model_folder", "manifest_folder", "symlink_alias"],
)
def test_conflicting_outputs_are_rejected(exporter, workspace, rows, fragment):
    (workspace / "out").mkdir()
    (workspace / "alias").symlink_to(workspace / "out")
    manifest = workspace / "rows.csv"
    write_csv(manifest, rows)
    before = sorted(str(path) for path in workspace.rglob("*"))

    result = run_batch(exporter, workspace, "--force", manifest, timeout=30)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]

    assert result.returncode == INVALID_INPUT, result.stderr
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0], result.stderr
    assert sorted(str(path) for path in workspace.rglob("*")) == before


def test_report_over_manifest_is_rejected(exporter, workspace):
    manifest = workspace / "rows.csv"
    write_csv(manifest, [("model/qwen2vl.pt", "text-generation", "out/a")])
    text = manifest.read_text()

    result = run_batch(exporter, workspace, "--report", manifest, manifest, timeout=30)

    assert result.returncode == USAGE, result.stderr
    assert "is the manifest, which the report would overwrite" in result.stderr
    assert manifest.read_text() == text


def test_second_batch_on_same_logs_is_rejected(exporter, workspace):
    manifest = workspace / "rows.csv"
    write_csv(manifest, [("model/qwen2vl.pt", "image-text-to-text", "out/a")])
    first = subprocess.Popen([str(exporter), "batch", str(manifest)], cwd=workspace,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (workspace / "batch_report.logs" / "row-1.log").exists() and time.monotonic() < deadline:
        time.sleep(0.02)

    second = run_batch(exporter, workspace, manifest, timeout=30)
    _, first_stderr = first.communicate(timeout=300)

    assert second.returncode == USAGE, second.stderr
    assert "another qwen2vl-export batch is using the log folder" in second.stderr
    assert first.returncode == SUCCESS, first_stderr
    assert read_report(workspace / "batch_report.json")["status"] == "ok"


def test_killed_batch_stops_its_rows(exporter, workspace):
    """SIGKILL to the batch: the kernel sends its rows SIGTERM, and they remove their partial output."""
    manifest = workspace / "rows.csv"
    write_csv(manifest, [("model/qwen2vl.pt", "image-text-to-text", "out/a")])
    batch = subprocess.Popen([str(exporter), "batch", str(manifest)], cwd=workspace,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    rows = []
    while not rows and batch.poll() is None and time.monotonic() < deadline:
        rows = [int(pid) for task in Path(f"/proc/{batch.pid}/task").glob("*")
                for pid in (task / "children").read_text().split()]
        time.sleep(0.01)
    assert rows, "the batch started no row"

    batch.kill()
    batch.wait(timeout=30)
    while any(Path(f"/proc/{pid}").exists() for pid in rows) and time.monotonic() < deadline:
        time.sleep(0.05)

    # The row is not our child, so it cannot stay a zombie: its /proc entry disappears once it has exited.
    assert not any(Path(f"/proc/{pid}").exists() for pid in rows), "a row kept running after the batch was killed"
    assert leftovers(workspace) == []
    assert not (workspace / "out" / "a").exists()
