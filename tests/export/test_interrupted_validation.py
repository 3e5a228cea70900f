"""SIGTERM sent to the exporter alone while ONNX Runtime validates: the Python
validator child is stopped, and its temporary folder and the staging folder
are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

INTERRUPTED = 130


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid`, from /proc."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(value) for value in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def slow_interpreter(folder: Path) -> Path:
    """An interpreter that waits 60 s before it runs the validator with the real one.

    The tiny model validates in well under a second, which would end the
    validator before the test could tell whether the exporter stopped it.
    """
    python = os.environ.get("QWEN2VL_PYTHON", sys.executable)
    wrapper = folder / "slow-python"
    wrapper.write_text(
        f"#!{python}\n"
        "import os, sys, time\n"
        "time.sleep(60)\n"
        f"os.execv({python!r}, [{python!r}] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    return wrapper


def test_sigterm_during_validation_stops_validator(exporter, traced_path, tmp_path):
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    output_dir = tmp_path / "out"
    environment = dict(os.environ, TMPDIR=str(temp_root))
    command = [str(exporter), "export", "--model", str(traced_path), "--task", "text-generation",
               "--python", str(slow_interpreter(tmp_path)), str(output_dir)]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # Wait for the validator: a qwen2vl-ort-* folder and a child process.
    deadline = time.monotonic() + 120
    validators = []
    while time.monotonic() < deadline and process.poll() is None:
        if list(temp_root.glob("qwen2vl-ort-*")):
            validators = child_pids(process.pid)
            if validators:
                break
        time.sleep(0.005)
    assert validators, "the export ended before its validation could be interrupted: " + process.communicate()[1]

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == INTERRUPTED, stderr
    assert "interrupted by SIGTERM" in stderr

    deadline = time.monotonic() + 20
    while any(is_running(pid) for pid in validators) and time.monotonic() < deadline:
        time.sleep(0.05)
    still_running = [pid for pid in validators if is_running(pid)]
    for pid in still_running:
        os.kill(pid, signal.SIGKILL)
    assert still_running == [], "the validator kept running after the exporter was stopped"
    assert list(temp_root.iterdir()) == []
    assert not output_dir.exists()
    assert [path.name for path in tmp_path.iterdir() if ".partial" in path.name] == []

