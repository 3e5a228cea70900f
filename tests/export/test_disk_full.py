"""A write that fails during `qwen2vl-export export`: a full disk or the file size limit.

The export must end with exit code 6 and one error line that names the file and
the cause. It must leave no staging folder `.<name>.partial-<pid>` and no
half-written file. An earlier export in the same place, which --force would
replace, must stay byte for byte as it was.

The full disk is a small tmpfs that each test mounts under its tmp_path, sized in
pages from the export of the same task on the ordinary disk. These tests need root
and skip without it. The file size limit is RLIMIT_FSIZE, set on the exporter's
process only.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from export_support import error_lines

IO_ERROR = 6
NO_SPACE = "No space left on device"
FILE_TOO_LARGE = "File too large"

# tmpfs allocates whole pages, so the tests size each tmpfs in pages.
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Room for files whose size varies between runs, such as export_report.json with its timings.
SPARE_PAGES = 16


def pages(byte_count: int) -> int:
    return -(-byte_count // PAGE_SIZE)


def file_sizes(folder: Path) -> dict[str, int]:
    """Return the size in bytes of every file under `folder`, by path relative to it."""
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


def pages_used(folder: Path) -> int:
    """Return the pages that the files under `folder` fill on a tmpfs."""
    return sum(pages(size) for size in file_sizes(folder).values())


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Return every entry under `folder` by relative path: a file's bytes, or None for a folder."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def staging_folders(parent: Path, target_name: str) -> list[str]:
    return sorted(path.name for path in parent.glob(f".{target_name}.partial-*"))


def run_export(exporter: Path, traced_path: Path, task: str, output_dir: Path, *extra: str, file_size_limit=None):
    """Run `qwen2vl-export export --no-validate` and return the finished process, stderr as text.

    With `file_size_limit` in bytes, the exporter runs under that RLIMIT_FSIZE soft
    limit and with the default action of SIGXFSZ (end the process), so only the
    exporter itself can choose to ignore the signal.
    """

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        _, hard_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, hard_limit))

    command = [str(exporter), "export", "--model", str(traced_path), "--task", task, "--no-validate"]
    command += [*extra, str(output_dir)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=limit_file_size if file_size_limit is not None else None,
    )


def assert_write_failed(process: subprocess.CompletedProcess, file_name: str, cause: str, folder: Path) -> None:
    """Assert that `process` exited with the I/O error of writing `file_name` in `folder` for `cause`."""
    assert process.returncode != -signal.SIGXFSZ, "SIGXFSZ ended qwen2vl-export before it could clean up"
    assert process.returncode == IO_ERROR, process.stderr
    errors = error_lines(process.stderr)
    assert len(errors) == 1, process.stderr
    assert str(folder) in errors[0]
    assert file_name in errors[0]
    assert cause in errors[0]


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Return a function that mounts a tmpfs of a given size in bytes and returns its folder.

    Every mount is unmounted at teardown, whatever the test did. Skip the test when
    the process is not root or the mount fails.
    """
    mounted: list[Path] = []

    def mount(size_bytes: int) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            pytest.skip("the mount command is not installed")
        if result.returncode != 0:
            pytest.skip(f"mounting a tmpfs failed: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount

    failed = []
    for folder in reversed(mounted):
        result = subprocess.run(["umount", str(folder)], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, timeout=60)
            failed.append(f"{folder}: {result.stderr.strip()}")
    if failed:
        pytest.fail(f"failed to unmount, detached lazily instead: {'; '.join(failed)}")


def half_the_export(reference: Path) -> int:
    """Return half the pages of an export, so the data file, which is written first, runs out of space."""
    return pages_used(reference) // 2


def data_file_and_half_the_graph(reference: Path) -> int:
    """Return the pages of model.onnx_data and half those of model.onnx, which is written after it."""
    data_pages = pages((reference / "model.onnx_data").stat().st_size)
    return data_pages + pages((reference / "model.onnx").stat().st_size) // 2


def split_layout_pages(reference: Path) -> int:
    """Return the pages of the vision encoder and embed_tokens graphs and half the decoder's data file.

    The exporter writes the decoder last, so a tmpfs of this size runs out during its data file.
    """
    sizes = file_sizes(reference / "onnx")
    assert sorted(sizes) == [
        "decoder_model_merged.onnx",
        "decoder_model_merged.onnx_data",
        "embed_tokens.onnx",
        "embed_tokens.onnx_data",
        "vision_encoder.onnx",
        "vision_encoder.onnx_data",
    ]
    earlier_graphs = sum(pages(size) for name, size in sizes.items() if not name.startswith("decoder_model_merged"))
    return earlier_graphs + pages(sizes["decoder_model_merged.onnx_data"]) // 2


# task, the file whose write fails, and the tmpfs size in pages computed from the task's export
NO_SPACE_CASES = [
    pytest.param("text-generation", "model.onnx_data", half_the_export, id="data_file"),
    pytest.param("text-generation", "model.onnx.partial", data_file_and_half_the_graph, id="graph_file"),
    pytest.param("image-text-to-text", "onnx/decoder_model_merged.onnx_data", split_layout_pages, id="later_graph"),
]


@pytest.mark.parametrize("task, file_name, size_pages", NO_SPACE_CASES)
def test_full_disk_leaves_nothing(task, file_name, size_pages, mount_tmpfs, task_exports, exporter, traced_path):
    reference = task_exports.output_dir(task)
    mount_dir = mount_tmpfs(size_pages(reference) * PAGE_SIZE)
    output_dir = mount_dir / "out"
    process = run_export(exporter, traced_path, task, output_dir)

    assert_write_failed(process, file_name, NO_SPACE, mount_dir)
    assert staging_folders(mount_dir, "out") == []
    assert not output_dir.exists()
    assert list(mount_dir.iterdir()) == []


@pytest.fixture
def earlier_export(mount_tmpfs, task_exports, exporter, traced_path):
    """Return a function that exports text-generation into `out` on a new tmpfs and returns `out`.

    The tmpfs has room for that export, SPARE_PAGES and `extra_pages`, so a second
    export into it can only fit into the extra pages.
    """

    def export(extra_pages: int = 0) -> Path:
        reference = task_exports.output_dir("text-generation")
        mount_dir = mount_tmpfs((pages_used(reference) + SPARE_PAGES + extra_pages) * PAGE_SIZE)
        output_dir = mount_dir / "out"
        process = run_export(exporter, traced_path, "text-generation", output_dir)
        assert process.returncode == 0, f"the first export does not fit on the tmpfs: {process.stderr}"
        return output_dir

    return export


def test_full_disk_keeps_earlier_export(earlier_export, exporter, traced_path):
    # image-text-to-text writes its vision encoder first, whose data file alone is larger than the space left.
    output_dir = earlier_export()
    mount_dir = output_dir.parent
    before = snapshot(mount_dir)
    process = run_export(exporter, traced_path, "image-text-to-text", output_dir, "--force")

    assert_write_failed(process, "onnx/vision_encoder.onnx_data", NO_SPACE, mount_dir)
    assert staging_folders(mount_dir, "out") == []
    assert snapshot(mount_dir) == before


def test_full_disk_keeps_filler_and_export(earlier_export, task_exports, exporter, traced_path):
    # The tmpfs has room for two exports, but a filler file takes all of it except half the data file.
    reference = task_exports.output_dir("text-generation")
    output_dir = earlier_export(extra_pages=pages_used(reference))
    mount_dir = output_dir.parent
    statistics = os.statvfs(mount_dir)
    space_left = pages((reference / "model.onnx_data").stat().st_size) // 2 * PAGE_SIZE
    filler = mount_dir / "filler.bin"
    filler.write_bytes(os.urandom(statistics.f_bavail * statistics.f_frsize - space_left))
    before = snapshot(mount_dir)
    process = run_export(exporter, traced_path, "text-generation", output_dir, "--force")

    assert_write_failed(process, "model.onnx_data", NO_SPACE, mount_dir)
    assert staging_folders(mount_dir, "out") == []
    assert sorted(path.name for path in mount_dir.iterdir()) == ["filler.bin", "out"]
    assert filler.read_bytes() == before["filler.bin"]
    assert snapshot(mount_dir) == before


def largest_file_and_limit(reference: Path) -> tuple[str, int]:
    """Return the largest file of an export and a size limit between it and the second largest."""
    sizes = sorted(file_sizes(reference).items(), key=lambda item: item[1], reverse=True)
    (largest, largest_size), (_, second_size) = sizes[0], sizes[1]
    assert largest_size - second_size >= 2 * PAGE_SIZE, f"no room for a size limit below {largest}: {sizes[:2]}"
    return largest, (largest_size + second_size) // 2


@pytest.mark.parametrize("task", ["text-generation", "image-text-to-text"])
def test_file_size_limit_leaves_nothing(task, task_exports, exporter, traced_path, tmp_path):
    # The limit lets every file but the largest through: for image-text-to-text that is
    # the decoder's data file, written after the other two graphs.
    largest, limit = largest_file_and_limit(task_exports.output_dir(task))
    output_dir = tmp_path / "out"
    process = run_export(exporter, traced_path, task, output_dir, file_size_limit=limit)

    assert_write_failed(process, largest, FILE_TOO_LARGE, tmp_path)
    assert staging_folders(tmp_path, "out") == []
    assert not output_dir.exists()
    assert list(tmp_path.iterdir()) == []


def test_file_size_limit_keeps_earlier_export(task_exports, exporter, traced_path, tmp_path):
    output_dir = tmp_path / "out"
    first = run_export(exporter, traced_path, "text-generation", output_dir)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path)
    largest, limit = largest_file_and_limit(task_exports.output_dir("text-generation"))
    process = run_export(exporter, traced_path, "text-generation", output_dir, "--force", file_size_limit=limit)

    assert_write_failed(process, largest, FILE_TOO_LARGE, tmp_path)
    assert staging_folders(tmp_path, "out") == []
    assert snapshot(tmp_path) == before
