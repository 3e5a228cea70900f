#!/usr/bin/env python3
"""Benchmark qwen2vl-export on a Qwen2-VL-2B-sized checkpoint against the I/O floor and the alternatives.

One run on one machine and one traced checkpoint measures:

* qwen2vl-export wall time and peak RSS for `image-text-to-text` and
  `text-generation-with-past` with `--no-validate`, and the validation time of
  `image-text-to-text` when MemAvailable allows LibTorch and ONNX Runtime side by side;
* the I/O floor: `cp` of the .pt archive to the same disk plus fsync, as the exporter fsyncs;
* weight bytes (unique parameters of the checkpoint) and the ratios
  export peak RSS / weight bytes and export time / copy time;
* torch.onnx.export of the same computation as `text-generation-with-past`, under a
  memory cap and a time limit;
* ONNX Runtime on the three `image-text-to-text` graphs against transformers eager on the
  CPU: prefill of one 448 x 448 image (1024 patches, 256 image tokens) plus 32 text
  tokens, then 16 greedy decode steps, with the same thread count;
* the memory-bandwidth floor of one decode step: decoder weight bytes / numpy copy bandwidth;
* correctness: ONNX Runtime loads every written graph, and the split-graph decoder
  reproduces transformers' greedy tokens.

Every heavy step runs in a child process, one at a time, under an address-space limit
(RLIMIT_AS), so a step that needs too much memory fails with an allocation error instead
of waking the kernel's OOM killer. Peak RSS comes from GNU time's rusage (the maximum over
the child and the processes it waited for) and from sampling the summed RSS of the child's
process group every 0.2 s. Other work on the machine slows every timing, so each step also
records the load average.

Usage:
    benchmark.py [--checkpoint DIR] [--cache-dir DIR] [--work DIR] [--exporter PATH]
                 [--skip-torch-onnx] [--json OUT.json] [--threads N] [--memory-cap-gib G]
    benchmark.py --table-from OUT.json

Without --checkpoint, the checkpoint is written by `make_tiny_model.py --real-2b` into
CACHE_DIR/qwen2vl-2b-random when missing, and traced into CACHE_DIR/trace/qwen2vl.pt.
The cache stays; the exports and copies under --work are deleted at the end unless
--keep-work is given. docs/benchmarks.md records a run and explains the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
REPO_DIR = TOOLS_DIR.parent
sys.path.insert(0, str(TOOLS_DIR))

GIB = 1024**3
EXPORT_TASKS = ("image-text-to-text", "text-generation-with-past")
# Methods that the two export tasks convert; tracing only these saves time and memory.
TRACED_METHODS = "vision_encoder,embed_tokens,decoder,text_generation_with_past"
RUNTIME_GRAPHS = ("onnx/vision_encoder.onnx", "onnx/embed_tokens.onnx", "onnx/decoder_model_merged.onnx")

# Generation benchmark: one 448 x 448 image is a (1, 32, 32) grid of 14-pixel patches,
# 1024 patches that merge 2 x 2 into 256 image tokens. The prompt is the image block
# (vision_start, 256 image tokens, vision_end) followed by 32 text tokens.
IMAGE_GRID = (1, 32, 32)
TEXT_TOKENS = 32
DECODE_STEPS = 16
MATCH_STEPS = 8
INPUT_SEED = 11

# Sizes for running torch.onnx.export's graph: none equals a size of trace_model.py's example
# inputs (batch 2, sequence 24, past 5, grids 4 x 4 and 6 x 8), so frozen sizes would show.
CHECK_SPEC_FIELDS = {"batch": 1, "sequence": 40, "past": 3, "grids": [(1, 4, 6)], "seed": 13}

# Exception texts that mean an allocation failed at the address-space limit.
ALLOCATION_FAILURE = re.compile(
    r"MemoryError|std::bad_alloc|bad_alloc|Cannot allocate memory|can't allocate memory|"
    r"Failed to allocate|out of memory|not enough memory",
    re.IGNORECASE,
)

TIME_BINARY = "/usr/bin/time"  # GNU time, Debian package "time"

START = time.monotonic()


def progress(message: str) -> None:
    elapsed = int(time.monotonic() - START)
    print(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {message}", flush=True)


# ---------------------------------------------------------------------------
# Machine facts and memory


def read_meminfo() -> dict[str, int]:
    """Return /proc/meminfo in bytes."""
    values = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            key, rest = line.split(":", 1)
            fields = rest.split()
            values[key] = int(fields[0]) * (1024 if len(fields) > 1 else 1)
    return values


def mem_available() -> int:
    return read_meminfo()["MemAvailable"]


def machine_facts() -> dict:
    cpu_model = "unknown"
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    debian = Path("/etc/debian_version")
    facts = {
        "cpu_model": cpu_model,
        "cpus_online": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "mem_total_bytes": read_meminfo()["MemTotal"],
        "debian_version": debian.read_text().strip() if debian.is_file() else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "openblas_env": {key: os.environ[key] for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if key in os.environ},
    }
    for package in ("torch", "transformers", "onnx", "onnxruntime", "numpy"):
        try:
            facts[f"{package}_version"] = __import__(package).__version__
        except ImportError:
            facts[f"{package}_version"] = None
    return facts


def wait_for_memory(needed: int, step: str, max_wait_s: float = 600.0) -> bool:
    """Wait until MemAvailable reaches `needed` bytes; return False when it does not within max_wait_s."""
    deadline = time.monotonic() + max_wait_s
    warned = False
    while True:
        available = mem_available()
        if available >= needed:
            return True
        if time.monotonic() >= deadline:
            progress(f"{step}: MemAvailable {available / GIB:.1f} GiB stayed below {needed / GIB:.1f} GiB; skipped")
            return False
        if not warned:
            progress(f"{step}: waiting for MemAvailable {needed / GIB:.1f} GiB (now {available / GIB:.1f} GiB)")
            warned = True
        time.sleep(10)


def memory_cap(args) -> int:
    """Return the RLIMIT_AS for the next child: --memory-cap-gib, lowered to leave 1.5 GiB of MemAvailable."""
    return int(min(args.memory_cap_gib * GIB, mem_available() - 1.5 * GIB))


# ---------------------------------------------------------------------------
# Running and measuring children


class TreeRssSampler(threading.Thread):
    """Sample the summed RSS of every process in one process group."""

    def __init__(self, pgid: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pgid = pgid
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.stopped = threading.Event()
        self.page_size = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> int:
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat_file:
                    stat = stat_file.read()
            except OSError:
                continue
            # Fields after the parenthesized command name: state ppid pgrp ... rss is field 24.
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) == self.pgid:
                total += int(fields[21]) * self.page_size
        return total

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            self.peak_bytes = max(self.peak_bytes, self.sample())


def run_measured(command: list[str], log_path: Path, cap_bytes: int | None, timeout_s: float | None) -> dict:
    """Run `command` in its own process group under RLIMIT_AS and return wall time, peak RSS and the outcome.

    stdout and stderr go to `log_path`. On timeout the group gets SIGTERM, then SIGKILL 30 s later.
    """

    def limit_memory() -> None:
        if cap_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    log_path.parent.mkdir(parents=True, exist_ok=True)
    # /usr/bin/time forks the command from its own small process. A child forked from this
    # Python process would inherit its RSS high-water mark, which Linux keeps across exec.
    usage_path = log_path.with_suffix(".rusage")
    measured = [TIME_BINARY, "-o", str(usage_path), "-f", "%M %e %U %S", *command]
    timed_out = threading.Event()
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            measured, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_memory, start_new_session=True
        )
    sampler = TreeRssSampler(process.pid)
    sampler.start()

    def stop_group() -> None:
        timed_out.set()
        for sig, delay in ((signal.SIGTERM, 30), (signal.SIGKILL, 0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            time.sleep(delay)

    timer = threading.Timer(timeout_s, stop_group) if timeout_s else None
    if timer:
        timer.daemon = True
        timer.start()
    exit_code = process.wait()
    wall_s = time.monotonic() - start
    if timer:
        timer.cancel()
    sampler.stopped.set()
    sampler.join()

    # The last line contains "%M %e %U %S". When a signal ended the command, a line before it names the signal.
    usage_lines = usage_path.read_text(encoding="utf-8", errors="replace").splitlines() if usage_path.is_file() else []
    max_rss_kib, _, user_s, sys_s = (float(value) for value in usage_lines[-1].split()) if usage_lines else (0, 0, 0, 0)
    signal_line = next((line for line in usage_lines if "terminated by signal" in line), None)
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    result = {
        "command": command,
        "exit_code": exit_code,
        "wall_s": round(wall_s, 2),
        "user_s": user_s,
        "sys_s": sys_s,
        "peak_rss_bytes": int(max_rss_kib) * 1024,
        "peak_tree_rss_sampled_bytes": sampler.peak_bytes,
        "memory_cap_bytes": cap_bytes,
        "timed_out": timed_out.is_set(),
        # 1-minute load average before and after: above the CPU count, other work shared the CPUs.
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "log": str(log_path),
    }
    if exit_code != 0:
        result["failure"] = describe_failure(exit_code, log_text, timed_out.is_set(), signal_line)
    return result


def describe_failure(exit_code: int, log_text: str, timed_out: bool, signal_line: str | None) -> str:
    if timed_out:
        return "stopped at the time limit"
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    allocation = [line for line in lines if ALLOCATION_FAILURE.search(line)]
    if allocation:
        return f"allocation failed at the memory cap: {allocation[-1][:300]}"
    if signal_line:
        return signal_line.strip()
    errors = [line for line in lines if re.match(r"^(error:|\w+(\.\w+)*(Error|Exception)\b)", line)]
    if errors:
        last = errors[-1]
    elif lines:
        last = lines[-1]
    else:
        last = "no output"
    return f"exit code {exit_code}: {last[:300]}"


def drop_file_cache(path: Path) -> None:
    """Evict one file's pages from the page cache, so the next read comes from the disk.

    posix_fadvise(DONTNEED) touches only this file's clean pages; other processes' cache stays.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


# ---------------------------------------------------------------------------
# Preparing the checkpoint and the trace


def safetensors_bytes(checkpoint: Path) -> dict:
    """Sum tensor bytes over the checkpoint's safetensors headers; tied weights are stored once."""
    total = 0
    tensors = 0
    for path in sorted(checkpoint.glob("*.safetensors")):
        with open(path, "rb") as weights:
            (header_length,) = struct.unpack("<Q", weights.read(8))
            header = json.loads(weights.read(header_length))
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end = entry["data_offsets"]
            total += end - start
            tensors += 1
    return {"bytes": total, "tensors": tensors}


def archive_storage_bytes(archive: Path) -> int:
    """Sum the storage records of a TorchScript archive: unique parameter and buffer storages."""
    with zipfile.ZipFile(archive) as zip_file:
        return sum(info.file_size for info in zip_file.infolist() if re.search(r"/data/\d+$", info.filename))


def prepare(args, results: dict) -> tuple[Path, Path]:
    python = sys.executable
    checkpoint = args.checkpoint or args.cache_dir / "qwen2vl-2b-random"
    trace = args.trace or args.cache_dir / "trace" / "qwen2vl.pt"
    logs = args.cache_dir / "logs"

    if (checkpoint / "config.json").is_file():
        progress(f"checkpoint: using {checkpoint}")
        results["checkpoint"] = {"path": str(checkpoint), "created": False}
    elif args.checkpoint:
        raise SystemExit(f"error: --checkpoint {checkpoint} has no config.json; pass a Qwen2-VL checkpoint folder")
    else:
        wait_for_memory(int(11 * GIB), "checkpoint")
        progress(f"checkpoint: writing the Qwen2-VL-2B configuration with random weights to {checkpoint}")
        command = [python, str(TOOLS_DIR / "make_tiny_model.py"), str(checkpoint), "--real-2b"]
        run = run_measured(command, logs / "make_checkpoint.log", memory_cap(args), None)
        if run["exit_code"] != 0:
            raise SystemExit(f"error: make_tiny_model.py failed ({run['failure']}); see {run['log']}")
        results["checkpoint"] = {"path": str(checkpoint), "created": True, "run": run}

    if trace.is_file():
        progress(f"trace: using {trace}")
        results["trace"] = {"path": str(trace), "created": False}
    else:
        wait_for_memory(int(11 * GIB), "trace")
        progress(f"trace: tracing {TRACED_METHODS} into {trace}")
        command = [python, str(TOOLS_DIR / "trace_model.py"), str(checkpoint), "--output", str(trace)]
        command += ["--methods", TRACED_METHODS]
        run = run_measured(command, logs / "trace.log", memory_cap(args), None)
        if run["exit_code"] != 0:
            raise SystemExit(f"error: trace_model.py failed ({run['failure']}); see {run['log']}")
        results["trace"] = {"path": str(trace), "created": True, "run": run}
    results["trace"]["file_bytes"] = trace.stat().st_size
    return checkpoint, trace


# ---------------------------------------------------------------------------
# Measurements in this process


def measure_copy_bandwidth(size_bytes: int = GIB, repeats: int = 5) -> dict:
    """Measure memory copy bandwidth with numpy: best of `repeats` copies of one array into another.

    The bandwidth counts the bytes read plus the bytes written (STREAM's convention for Copy).
    NOTE: numpy copies on one thread. Several threads may reach a higher bandwidth, so a
    floor computed from this one is an upper estimate.
    """
    import numpy as np

    source = np.ones(size_bytes // 8, dtype=np.float64)
    target = np.zeros_like(source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    del source, target
    return {"array_bytes": size_bytes, "repeats": repeats, "best_copy_s": best, "bytes_per_s": 2 * size_bytes / best}


def onnx_initializer_bytes(model_path: Path) -> int:
    """Sum initializer bytes of an ONNX graph without reading its external data."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    total = 0
    for initializer in model.graph.initializer:
        if initializer.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in initializer.external_data}
            total += int(entries["length"])
        else:
            total += len(initializer.raw_data)
    return total


# ---------------------------------------------------------------------------
# Steps run from the parent


def copy_floor(args, trace: Path, results: dict) -> None:
    target = args.work / "copy-of-trace.pt"
    progress(f"copy floor: cp {trace.name} ({trace.stat().st_size / GIB:.2f} GiB) to {args.work} and fsync it")
    drop_file_cache(trace)
    copy = run_measured(["cp", str(trace), str(target)], args.work / "logs" / "cp.log", None, None)
    sync = run_measured(["sync", str(target)], args.work / "logs" / "sync.log", None, None)
    target.unlink()
    results["copy"] = {
        "cp_s": copy["wall_s"],
        "fsync_s": sync["wall_s"],
        "total_s": round(copy["wall_s"] + sync["wall_s"], 2),
        "bytes": trace.stat().st_size,
        "source_evicted_from_page_cache": True,
    }
    progress(f"copy floor: cp {copy['wall_s']:.1f} s + fsync {sync['wall_s']:.1f} s")


def export_command(args, trace: Path, task: str, output: Path, validate: bool) -> list[str]:
    command = [str(args.exporter), "export", "--model", str(trace), "--task", task, str(output)]
    command += ["--report", str(output.parent / f"report-{output.name}.json")]
    return command + ([] if validate else ["--no-validate"])


def run_export(args, trace: Path, task: str, validate: bool, weight_bytes: int) -> dict:
    suffix = "-validated" if validate else ""
    output = args.work / f"export-{task}{suffix}"
    if output.exists():
        shutil.rmtree(output)
    label = f"export {task} ({'with validation' if validate else '--no-validate'})"
    if not wait_for_memory(int(1.4 * weight_bytes + 1.5 * GIB), label):
        return {"skipped": "not enough MemAvailable"}
    drop_file_cache(trace)
    progress(f"{label}: running")
    command = export_command(args, trace, task, output, validate)
    run = run_measured(command, args.work / "logs" / f"export-{task}{suffix}.log", memory_cap(args), args.export_timeout_min * 60)
    if run["exit_code"] == 0:
        run["output"] = str(output)
        run["output_bytes"] = folder_bytes(output)
        run["files"] = sorted(str(path.relative_to(output)) for path in output.rglob("*.onnx"))
        report = json.loads((output.parent / f"report-{output.name}.json").read_text())
        run["exporter_timings_s"] = report.get("timings_seconds", {})
        run["exporter_peak_rss_bytes"] = report.get("peak_rss_bytes")
    progress(
        f"{label}: exit {run['exit_code']}, {run['wall_s']:.1f} s, peak RSS {run['peak_rss_bytes'] / GIB:.2f} GiB"
        + (f" ({run['failure']})" if "failure" in run else "")
    )
    return run


def run_child(args, name: str, child_args: list[str], log_name: str, needed: int, timeout_s: float | None) -> dict:
    """Run one of this script's --child modes and merge the JSON it writes into the measurement."""
    if not wait_for_memory(needed, name):
        return {"skipped": "not enough MemAvailable"}
    result_path = args.work / f"{log_name}.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--child-result", str(result_path)]
    command += ["--threads", str(args.threads)] + child_args
    run = run_measured(command, args.work / "logs" / f"{log_name}.log", memory_cap(args), timeout_s)
    if result_path.is_file():
        run["result"] = json.loads(result_path.read_text())
    return run


# ---------------------------------------------------------------------------
# Child modes (each runs in its own process under the memory cap)


def benchmark_inputs(config_dir: Path) -> tuple[dict, object]:
    """Build the prompt of one 448 x 448 image and 32 text tokens, and the model sizes."""
    from transformers import Qwen2VLConfig

    from example_inputs import InputSpec, ModelSizes, image_tokens, make_inputs

    sizes = ModelSizes.from_config(Qwen2VLConfig.from_pretrained(config_dir))
    sequence = image_tokens(IMAGE_GRID, sizes.merge_size) + 2 + TEXT_TOKENS
    spec = InputSpec(batch=1, sequence=sequence, grids=[IMAGE_GRID], seed=INPUT_SEED)
    return make_inputs(spec, sizes), sizes


def write_child_result(path: Path, result: dict) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")


def child_ort_load(args) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.log_severity_level = 3
    start = time.perf_counter()
    session = ort.InferenceSession(str(args.model), sess_options=options, providers=["CPUExecutionProvider"])
    return {
        "load_s": time.perf_counter() - start,
        "inputs": [model_input.name for model_input in session.get_inputs()],
        "outputs": len(session.get_outputs()),
    }


def child_ort_generate(args) -> dict:
    import numpy as np
    import onnxruntime as ort

    from example_inputs import past_names

    inputs, sizes = benchmark_inputs(args.export_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3

    sessions = {}
    load_s = {}
    for graph in RUNTIME_GRAPHS:
        start = time.perf_counter()
        sessions[graph] = ort.InferenceSession(str(args.export_dir / graph), sess_options=options, providers=["CPUExecutionProvider"])
        load_s[graph] = time.perf_counter() - start
    vision, embed, decoder = (sessions[graph] for graph in RUNTIME_GRAPHS)
    past = past_names(sizes.num_layers)
    empty_past = np.zeros((1, sizes.num_key_value_heads, 0, sizes.head_dim), dtype=np.float32)

    def prefill() -> tuple[np.ndarray, list[np.ndarray], dict]:
        timings = {}
        start = time.perf_counter()
        features = vision.run(None, {"pixel_values": inputs["pixel_values"], "grid_thw": inputs["grid_thw"]})[0]
        timings["vision_s"] = time.perf_counter() - start
        start = time.perf_counter()
        embeds = embed.run(None, {"input_ids": inputs["input_ids"]})[0]
        embeds[inputs["input_ids"] == sizes.image_token_id] = features
        timings["embed_and_merge_s"] = time.perf_counter() - start
        feeds = {
            "inputs_embeds": embeds,
            "attention_mask": inputs["attention_mask"],
            "position_ids": inputs["position_ids"],
        }
        feeds.update({name: empty_past for name in past})
        start = time.perf_counter()
        logits, *presents = decoder.run(None, feeds)
        timings["decoder_s"] = time.perf_counter() - start
        timings["total_s"] = sum(timings.values())
        return logits[0, -1], presents, timings

    return generate_loop(args, prefill, decode_ort_step(decoder, embed, past, inputs), load_s, np)


def decode_ort_step(decoder, embed, past, inputs):
    import numpy as np

    sequence = inputs["input_ids"].shape[1]
    first_position = int(inputs["position_ids"].max()) + 1

    def step(token: int, presents: list, index: int):
        embeds = embed.run(None, {"input_ids": np.array([[token]], dtype=np.int64)})[0]
        feeds = {
            "inputs_embeds": embeds,
            "attention_mask": np.ones((1, sequence + index + 1), dtype=np.int64),
            "position_ids": np.full((3, 1, 1), first_position + index, dtype=np.int64),
        }
        feeds.update(dict(zip(past, presents)))
        logits, *presents = decoder.run(None, feeds)
        return logits[0, -1], presents

    return step


def generate_loop(args, prefill, step, load_s, np) -> dict:
    """Run a warm-up prefill, a timed prefill and DECODE_STEPS greedy decode steps; save the last-position logits."""
    prefill()  # warm-up: first-run allocations and kernel selection
    logits, state, prefill_timings = prefill()
    rows = [np.asarray(logits, dtype=np.float32)]
    tokens = [int(np.argmax(rows[-1]))]
    step_s = []
    for index in range(DECODE_STEPS):
        start = time.perf_counter()
        logits, state = step(tokens[-1], state, index)
        step_s.append(time.perf_counter() - start)
        rows.append(np.asarray(logits, dtype=np.float32))
        tokens.append(int(np.argmax(rows[-1])))
    np.save(args.logits_out, np.stack(rows))
    return {
        "threads": args.threads,
        "load_s": load_s,
        "prefill": prefill_timings,
        "decode_step_s": step_s,
        "decode_mean_s": sum(step_s) / len(step_s),
        "tokens": tokens,
    }


def child_hf_generate(args) -> dict:
    import numpy as np
    import torch
    from transformers import Qwen2VLForConditionalGeneration
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(args.threads)
    transformers_logging.disable_progress_bar()
    inputs, sizes = benchmark_inputs(args.checkpoint)
    start = time.perf_counter()
    model = Qwen2VLForConditionalGeneration.from_pretrained(
        args.checkpoint, local_files_only=True, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    load_s = {"from_pretrained": time.perf_counter() - start}

    input_ids = torch.from_numpy(inputs["input_ids"])
    token_types = (input_ids == sizes.image_token_id).to(torch.int32)
    sequence = input_ids.shape[1]

    def prefill():
        start = time.perf_counter()
        with torch.inference_mode():
            # logits_to_keep=1 computes the lm_head for the last position only, as generate() does.
            output = model(
                input_ids=input_ids,
                attention_mask=torch.from_numpy(inputs["attention_mask"]),
                pixel_values=torch.from_numpy(inputs["pixel_values"]),
                image_grid_thw=torch.from_numpy(inputs["image_grid_thw"]),
                mm_token_type_ids=token_types,
                use_cache=True,
                logits_to_keep=1,
            )
        return output.logits[0, -1].numpy(), output.cache, {"total_s": time.perf_counter() - start}

    def step(token: int, cache, index: int):
        # transformers 5.25 derives decode positions from the full 2-D attention_mask when
        # position_ids is None, which breaks a manual loop (generate() passes position_ids).
        # The position is the cache length plus the rope delta that prefill stored, as in
        # Qwen2VLForConditionalGeneration._prepare_position_ids_for_generation.
        position = sequence + index + int(model.model.rope_deltas[0, 0])
        with torch.inference_mode():
            output = model(
                input_ids=torch.tensor([[token]], dtype=torch.int64),
                attention_mask=torch.ones((1, sequence + index + 1), dtype=torch.int64),
                position_ids=torch.full((3, 1, 1), position, dtype=torch.int64),
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        return output.logits[0, -1].numpy(), output.cache

    result = generate_loop(args, prefill, step, load_s, np)
    result["torch_threads"] = torch.get_num_threads()
    return result


def child_torch_onnx_export(args) -> dict:
    """Export the computation of the text-generation-with-past task with torch.onnx.export."""
    import torch
    from torch import nn

    from example_inputs import ModelSizes, input_names, output_names
    from trace_model import Qwen2VLTraceModule, example_arguments, load_model

    torch.set_num_threads(args.threads)
    method = "text_generation_with_past"
    model = load_model(args.checkpoint, "eager")
    sizes = ModelSizes.from_config(model.config)
    module = Qwen2VLTraceModule(model, "eager", plain_vision=False).eval()

    class TextGenerationWithPast(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *arguments):
            return self.inner.text_generation_with_past(*arguments)

    arguments = example_arguments([method], sizes)[method]
    names_in = input_names(method, sizes.num_layers)
    names_out = output_names(method, sizes.num_layers)
    axes = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "total_sequence"},
        "position_ids": {1: "batch", 2: "sequence"},
        "pixel_values": {0: "patches"},
        "image_grid_thw": {0: "images"},
        "logits": {0: "batch", 1: "sequence"},
    }
    axes.update({name: {0: "batch", 2: "past_sequence"} for name in names_in if name.startswith("past_key_values.")})
    axes.update({name: {0: "batch", 2: "total_sequence"} for name in names_out if name.startswith("present.")})

    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            torch.onnx.export(
                TextGenerationWithPast(module).eval(),
                arguments,
                str(args.output),
                dynamo=args.dynamo,
                opset_version=18,
                input_names=names_in,
                output_names=names_out,
                dynamic_axes=None if args.dynamo else axes,
            )
    except Exception as error:  # report any exporter failure as data, not as a crash
        message = str(error).strip().splitlines()
        return {
            "succeeded": False,
            "dynamo": args.dynamo,
            "export_s": time.perf_counter() - start,
            "exception_type": f"{type(error).__module__}.{type(error).__name__}",
            "first_line": message[0][:500] if message else "",
        }
    return {
        "succeeded": True,
        "dynamo": args.dynamo,
        "export_s": time.perf_counter() - start,
        "output_bytes": folder_bytes(args.output.parent),
    }


def check_inputs(config_dir: Path) -> dict:
    """Build text-generation-with-past inputs at sizes that differ from every size in the trace's example inputs."""
    from transformers import Qwen2VLConfig

    from example_inputs import InputSpec, ModelSizes, make_inputs

    sizes = ModelSizes.from_config(Qwen2VLConfig.from_pretrained(config_dir))
    return make_inputs(InputSpec(**CHECK_SPEC_FIELDS), sizes)


def child_torch_onnx_run(args) -> dict:
    """Run the torch.onnx.export graph with ONNX Runtime at the check sizes; save the logits."""
    import numpy as np
    import onnxruntime as ort

    inputs = check_inputs(args.checkpoint)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(args.model), sess_options=options, providers=["CPUExecutionProvider"])
        feeds = {model_input.name: inputs[model_input.name] for model_input in session.get_inputs()}
        logits = session.run(["logits"], feeds)[0]
    except Exception as error:  # onnxruntime raises its own exception classes; report them as data
        message = str(error).strip().splitlines()
        return {"succeeded": False, "exception_type": type(error).__name__, "first_line": message[0][:500] if message else ""}
    np.save(args.logits_out, logits)
    return {"succeeded": True, "logits_shape": list(logits.shape)}


def child_hf_reference(args) -> dict:
    """Compute text_generation_with_past logits at the check sizes with unmodified transformers."""
    import numpy as np
    import torch

    from hf_reference import compute_reference, load_reference_model

    torch.set_num_threads(args.threads)
    model = load_reference_model(str(args.checkpoint))
    outputs = compute_reference(model, "text_generation_with_past", check_inputs(args.checkpoint))
    np.save(args.logits_out, outputs["logits"])
    return {"logits_shape": list(outputs["logits"].shape)}


CHILD_MODES = {
    "ort-load": child_ort_load,
    "ort-generate": child_ort_generate,
    "hf-generate": child_hf_generate,
    "torch-onnx-export": child_torch_onnx_export,
    "torch-onnx-run": child_torch_onnx_run,
    "hf-reference": child_hf_reference,
}


# ---------------------------------------------------------------------------
# Report


def gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GIB:.2f} GiB"


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def summarize(results: dict) -> list[tuple[str, str]]:
    """Compute the ratios and return the table rows (metric, value)."""
    rows = []
    weight_bytes = results["weights"]["bytes"]
    copy_s = results.get("copy", {}).get("total_s")
    rows.append(("weight bytes (unique parameters)", f"{weight_bytes:,} B ({gib(weight_bytes)})"))
    rows.append((".pt archive", gib(results["trace"]["file_bytes"])))
    if copy_s:
        copy = results["copy"]
        rows.append(("cp .pt + fsync (I/O floor)", f"{seconds(copy_s)} (cp {copy['cp_s']:.1f} s, fsync {copy['fsync_s']:.1f} s)"))

    ratios = results.setdefault("ratios", {})
    for task in EXPORT_TASKS:
        run = results["exports"].get(task, {})
        if run.get("exit_code") != 0:
            rows.append((f"export {task}", run.get("failure") or run.get("skipped", "not run")))
            continue
        rss_ratio = run["peak_rss_bytes"] / weight_bytes
        time_ratio = run["wall_s"] / copy_s if copy_s else None
        ratios[task] = {"peak_rss_over_weights": round(rss_ratio, 3), "time_over_copy": time_ratio and round(time_ratio, 2)}
        rows.append((f"export {task}, --no-validate: wall", seconds(run["wall_s"])))
        phases = ", ".join(f"{name} {value:.1f} s" for name, value in run.get("exporter_timings_s", {}).items())
        if phases:
            rows.append(("  phases (exporter's --report)", phases))
        cpu_s = f"{run['user_s'] + run['sys_s']:.1f} s"
        if "load_average_1min" in run:
            cpu_s += f" (1-min load average before: {run['load_average_1min'][0]:.1f})"
        rows.append(("  CPU time user + sys", cpu_s))
        rows.append((f"export {task}: peak RSS", gib(run["peak_rss_bytes"])))
        rows.append((f"export {task}: peak RSS / weight bytes (target <= 1.25)", f"{rss_ratio:.2f}"))
        if time_ratio:
            rows.append((f"export {task}: time / copy time (target <= 3)", f"{time_ratio:.2f}"))
        rows.append((f"export {task}: output", gib(run["output_bytes"])))

    validated = results.get("validation", {})
    if validated.get("exit_code") == 0:
        unvalidated = results["exports"]["image-text-to-text"]["wall_s"]
        rows.append(("export image-text-to-text with validation: wall", seconds(validated["wall_s"])))
        rows.append(("  validation alone (difference)", seconds(validated["wall_s"] - unvalidated)))
        rows.append(("  peak RSS, sum over processes (sampled)", gib(validated["peak_tree_rss_sampled_bytes"])))
    elif validated:
        rows.append(("export image-text-to-text with validation", validated.get("failure") or validated.get("skipped", "")))

    torch_onnx = results.get("torch_onnx_export")
    if torch_onnx:
        rows.append(("torch.onnx.export (text-generation-with-past)", torch_onnx_outcome(torch_onnx)))
        if torch_onnx.get("wall_s") is not None:
            rows.append(("  wall / peak RSS", f"{seconds(torch_onnx['wall_s'])} / {gib(torch_onnx.get('peak_rss_bytes'))}"))
    check = results.get("torch_onnx_check")
    if check:
        ort_run = check["ort"].get("result") or {}
        if not ort_run.get("succeeded"):
            outcome = f"failed: {ort_run.get('exception_type')}: {ort_run.get('first_line')}" if ort_run else check["ort"].get("failure")
        elif "max_abs_logit_diff" in check:
            outcome = f"runs; max |logit difference| vs transformers {check['max_abs_logit_diff']:.2e}"
        else:
            outcome = "runs; transformers reference failed"
        rows.append(("  its graph at other sizes (batch 1, seq 40, past 3)", outcome))

    generation = results.get("generation", {})
    ort_result = generation.get("ort", {}).get("result")
    hf_result = generation.get("transformers", {}).get("result")
    threads = results.get("threads")
    if ort_result:
        prefill = ort_result["prefill"]
        rows.append(
            (
                f"ONNX Runtime prefill ({threads} threads)",
                f"{seconds(prefill['total_s'])} (vision {prefill['vision_s']:.1f} s, decoder {prefill['decoder_s']:.1f} s)",
            )
        )
        rows.append((f"ONNX Runtime decode step, mean of {DECODE_STEPS}", milliseconds(ort_result["decode_mean_s"])))
        rows.append(("ONNX Runtime generation process peak RSS", gib(generation["ort"]["peak_rss_bytes"])))
    if hf_result:
        rows.append((f"transformers eager prefill ({threads} threads)", seconds(hf_result["prefill"]["total_s"])))
        rows.append((f"transformers eager decode step, mean of {DECODE_STEPS}", milliseconds(hf_result["decode_mean_s"])))
        rows.append(("transformers generation process peak RSS", gib(generation["transformers"]["peak_rss_bytes"])))
    floor = results.get("decode_floor")
    if floor:
        rows.append(("numpy copy bandwidth (read + write, best of 5)", f"{floor['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s"))
        rows.append(("decoder weight bytes", gib(floor["decoder_weight_bytes"])))
        rows.append(("decode floor = decoder bytes / bandwidth", milliseconds(floor["floor_s"])))
        if ort_result:
            rows.append(("  ONNX Runtime decode / floor", f"{ort_result['decode_mean_s'] / floor['floor_s']:.1f}x"))
        if hf_result:
            rows.append(("  transformers decode / floor", f"{hf_result['decode_mean_s'] / floor['floor_s']:.1f}x"))
    match = generation.get("token_match")
    if match:
        rows.append((f"greedy tokens equal for the first {MATCH_STEPS}", "yes" if match["first_steps_equal"] else "NO"))
        rows.append(("  tokens equal, all", f"{match['equal_count']} of {match['compared']}"))
        rows.append(("  distinct tokens generated", str(len(set(match["transformers_tokens"])))))
        rows.append(("  max |logit difference|, last position", f"{match['max_abs_logit_diff']:.2e}"))
        rows.append(("  smallest top-1 minus top-2 logit", f"{match['min_top1_top2_margin']:.2e}"))
    loads = results.get("ort_loads", {})
    if loads:
        loaded = sum(1 for run in loads.values() if run.get("exit_code") == 0)
        rows.append(("ONNX Runtime loads the written graphs", f"{loaded} of {len(loads)}"))
        for graph, run in loads.items():
            outcome = f"{run['result']['load_s']:.1f} s, peak RSS {gib(run['peak_rss_bytes'])}" if run.get("exit_code") == 0 else run.get("failure", run.get("skipped"))
            rows.append((f"  {graph}", outcome))
    return rows


def torch_onnx_outcome(run: dict) -> str:
    if "skipped" in run:
        return f"skipped: {run['skipped']}"
    result = run.get("result")
    if result and result["succeeded"]:
        return f"succeeded in {result['export_s']:.1f} s, {gib(result['output_bytes'])} written"
    if result:
        return f"failed: {result['exception_type']}: {result['first_line']}"
    return f"failed: {run.get('failure', 'no result')}"


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(metric) for metric, _ in rows)
    print()
    for metric, value in rows:
        print(f"{metric.ljust(width)}  {value}")
    print(flush=True)


# ---------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark qwen2vl-export on a 2B-sized Qwen2-VL checkpoint.")
    parser.add_argument("--checkpoint", type=Path, help="Qwen2-VL checkpoint folder (default: CACHE_DIR/qwen2vl-2b-random, written if missing)")
    parser.add_argument("--trace", type=Path, help="traced archive of the checkpoint (default: CACHE_DIR/trace/qwen2vl.pt, traced if missing)")
    parser.add_argument("--cache-dir", type=Path, default=REPO_DIR / "out" / "bench-cache", help="folder for the checkpoint, the trace and their logs (default out/bench-cache)")
    parser.add_argument("--work", type=Path, help="folder for exports, copies and logs (default CACHE_DIR/work); its multi-GB files are deleted at the end")
    parser.add_argument("--keep-work", action="store_true", help="keep the exports and the torch.onnx output under --work")
    parser.add_argument("--exporter", type=Path, default=REPO_DIR / "build" / "qwen2vl-export", help="qwen2vl-export binary (default build/qwen2vl-export)")
    parser.add_argument("--skip-torch-onnx", action="store_true", help="do not run torch.onnx.export")
    parser.add_argument("--torch-onnx-dynamo", action="store_true", help="use the torch.export-based exporter (dynamo=True) instead of the TorchScript-based one")
    parser.add_argument("--torch-onnx-timeout-min", type=float, default=20, help="time limit of torch.onnx.export in minutes (default 20)")
    parser.add_argument("--export-timeout-min", type=float, default=60, help="time limit of each qwen2vl-export run in minutes (default 60)")
    parser.add_argument("--skip-validation", action="store_true", help="do not time an export with validation")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="threads for ONNX Runtime and torch (default: usable CPUs)")
    parser.add_argument("--memory-cap-gib", type=float, default=20, help="address-space limit of each child process in GiB, lowered to leave 1.5 GiB available (default 20)")
    parser.add_argument("--json", type=Path, help="write all measurements to this JSON file")
    parser.add_argument("--table-from", type=Path, metavar="JSON", help="print the table of an earlier run's --json file and exit")
    # Internal: the parent runs this script again in one of these modes.
    parser.add_argument("--child", choices=sorted(CHILD_MODES), help=argparse.SUPPRESS)
    parser.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--export-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--logits-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dynamo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    args.work = args.work or args.cache_dir / "work"
    return args


def run_generation(args, checkpoint: Path, results: dict, weight_bytes: int) -> None:
    import numpy as np

    export_dir = args.work / "export-image-text-to-text"
    generation = results.setdefault("generation", {})
    progress(f"generation: ONNX Runtime, {args.threads} threads, prefill + {DECODE_STEPS} decode steps")
    ort_logits = args.work / "ort-logits.npy"
    child_args = ["--export-dir", str(export_dir), "--logits-out", str(ort_logits)]
    generation["ort"] = run_child(args, "ort-generate", child_args, "ort-generate", int(1.3 * weight_bytes + GIB), 3600)
    report_child("generation: ONNX Runtime", generation["ort"])

    progress(f"generation: transformers eager, {args.threads} threads")
    hf_logits = args.work / "hf-logits.npy"
    child_args = ["--checkpoint", str(checkpoint), "--logits-out", str(hf_logits)]
    generation["transformers"] = run_child(args, "hf-generate", child_args, "hf-generate", int(1.2 * weight_bytes + GIB), 3600)
    report_child("generation: transformers", generation["transformers"])

    ort_result = generation["ort"].get("result")
    hf_result = generation["transformers"].get("result")
    if ort_result and hf_result:
        ort_tokens, hf_tokens = ort_result["tokens"], hf_result["tokens"]
        equal = [a == b for a, b in zip(ort_tokens, hf_tokens)]
        ort_rows, hf_rows = np.load(ort_logits), np.load(hf_logits)
        # Margin between the best and the second-best logit: how far a token is from flipping.
        top2 = np.sort(hf_rows, axis=1)[:, -2:]
        generation["token_match"] = {
            "compared": len(equal),
            "equal_count": sum(equal),
            "first_steps_equal": all(equal[:MATCH_STEPS]),
            "ort_tokens": ort_tokens,
            "transformers_tokens": hf_tokens,
            "max_abs_logit_diff": float(np.abs(ort_rows - hf_rows).max()),
            "min_top1_top2_margin": float((top2[:, 1] - top2[:, 0]).min()),
        }
        progress(f"generation: tokens equal {sum(equal)} of {len(equal)}")


def check_torch_onnx(args, checkpoint: Path, model: Path, weight_bytes: int) -> dict:
    """Run torch.onnx.export's graph at sizes other than the traced ones and compare its logits with transformers."""
    import numpy as np

    progress("torch.onnx.export check: ONNX Runtime at batch 1, sequence 40, past 3, one 4 x 6 image")
    ort_logits, hf_logits = args.work / "torch-onnx-logits.npy", args.work / "torch-onnx-reference.npy"
    child_args = ["--checkpoint", str(checkpoint), "--model", str(model), "--logits-out", str(ort_logits)]
    run = run_child(args, "torch-onnx-run", child_args, "torch-onnx-run", int(1.5 * weight_bytes), 1800)
    check = {"ort": run}
    if not run.get("result", {}).get("succeeded"):
        progress(f"torch.onnx.export check: ONNX Runtime failed ({run.get('result') or run.get('failure')})")
        return check
    child_args = ["--checkpoint", str(checkpoint), "--logits-out", str(hf_logits)]
    check["transformers"] = run_child(args, "hf-reference", child_args, "torch-onnx-reference", int(1.2 * weight_bytes), 1800)
    if hf_logits.is_file():
        check["max_abs_logit_diff"] = float(np.abs(np.load(ort_logits) - np.load(hf_logits)).max())
        progress(f"torch.onnx.export check: max |logit difference| {check['max_abs_logit_diff']:.2e}")
    ort_logits.unlink(missing_ok=True)
    hf_logits.unlink(missing_ok=True)
    return check


def report_child(label: str, run: dict) -> None:
    if "skipped" in run:
        progress(f"{label}: skipped ({run['skipped']})")
    elif run["exit_code"] == 0:
        progress(f"{label}: done in {run['wall_s']:.1f} s, peak RSS {run['peak_rss_bytes'] / GIB:.2f} GiB")
    else:
        progress(f"{label}: failed ({run['failure']})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = CHILD_MODES[args.child](args)
        write_child_result(args.child_result, result)
        return 0
    if args.table_from:
        print_table(summarize(json.loads(args.table_from.read_text())))
        return 0

    if not os.access(TIME_BINARY, os.X_OK):
        print(f"error: {TIME_BINARY} not found; install GNU time (apt-get install time)", file=sys.stderr)
        return 2
    if not os.access(args.exporter, os.X_OK):
        print(f"error: exporter {args.exporter} not found or not executable; build it or pass --exporter", file=sys.stderr)
        return 2
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    exporter_version = subprocess.run([str(args.exporter), "--version"], capture_output=True, text=True).stdout.strip()
    results: dict = {"machine": machine_facts(), "exporter": {"path": str(args.exporter), "version": exporter_version}}
    results["threads"] = args.threads
    progress(f"{results['machine']['cpu_model']}, {results['machine']['cpus_usable']} CPUs, {gib(results['machine']['mem_total_bytes'])}; {exporter_version}")

    # The bandwidth comes first, before the large steps fill the page cache.
    progress("bandwidth: numpy copy of 1 GiB, best of 5")
    bandwidth = measure_copy_bandwidth()
    results["bandwidth"] = bandwidth
    progress(f"bandwidth: {bandwidth['bytes_per_s'] / 1e9:.1f} GB/s")

    checkpoint, trace = prepare(args, results)
    results["weights"] = safetensors_bytes(checkpoint)
    results["weights"]["archive_storage_bytes"] = archive_storage_bytes(trace)
    weight_bytes = results["weights"]["bytes"]
    progress(f"weights: {weight_bytes:,} bytes in {results['weights']['tensors']} tensors")

    copy_floor(args, trace, results)

    results["exports"] = {task: run_export(args, trace, task, False, weight_bytes) for task in EXPORT_TASKS}
    if not args.skip_validation:
        # LibTorch keeps the module while a Python child runs ONNX Runtime on each graph.
        if wait_for_memory(int(2.0 * weight_bytes + 3 * GIB), "validation", max_wait_s=300):
            results["validation"] = run_export(args, trace, "image-text-to-text", True, weight_bytes)
            shutil.rmtree(args.work / "export-image-text-to-text-validated", ignore_errors=True)
        else:
            results["validation"] = {"skipped": "not enough MemAvailable for LibTorch and ONNX Runtime together"}

    results["ort_loads"] = {}
    for task in EXPORT_TASKS:
        run = results["exports"][task]
        for graph in run.get("files", []):
            key = f"{task}/{graph}"
            progress(f"ONNX Runtime load: {key}")
            child_args = ["--model", str(args.work / f"export-{task}" / graph)]
            load = run_child(args, "ort-load", child_args, "ort-load-" + key.replace("/", "_"), int(1.3 * weight_bytes), 1800)
            results["ort_loads"][key] = load
            report_child(f"ONNX Runtime load: {key}", load)

    decoder_path = args.work / "export-image-text-to-text" / "onnx" / "decoder_model_merged.onnx"
    if decoder_path.is_file():
        decoder_bytes = onnx_initializer_bytes(decoder_path)
        results["decode_floor"] = {
            "decoder_weight_bytes": decoder_bytes,
            "bandwidth_bytes_per_s": bandwidth["bytes_per_s"],
            "floor_s": decoder_bytes / bandwidth["bytes_per_s"],
        }
        run_generation(args, checkpoint, results, weight_bytes)

    if args.skip_torch_onnx:
        results["torch_onnx_export"] = {"skipped": "--skip-torch-onnx"}
    else:
        kind = "dynamo" if args.torch_onnx_dynamo else "TorchScript-based"
        progress(f"torch.onnx.export ({kind}), limit {args.torch_onnx_timeout_min:g} min")
        output = args.work / "torch-onnx" / "model.onnx"
        child_args = ["--checkpoint", str(checkpoint), "--output", str(output)] + (["--dynamo"] if args.torch_onnx_dynamo else [])
        run = run_child(args, "torch-onnx-export", child_args, "torch-onnx-export", int(1.2 * weight_bytes), args.torch_onnx_timeout_min * 60)
        results["torch_onnx_export"] = run
        progress(f"torch.onnx.export: {torch_onnx_outcome(run)}")
        if run.get("result", {}).get("succeeded"):
            results["torch_onnx_check"] = check_torch_onnx(args, checkpoint, output, weight_bytes)
        shutil.rmtree(output.parent, ignore_errors=True)

    if not args.keep_work:
        for task in EXPORT_TASKS:
            shutil.rmtree(args.work / f"export-{task}", ignore_errors=True)
        for name in ("ort-logits.npy", "hf-logits.npy"):
            (args.work / name).unlink(missing_ok=True)
        progress(f"deleted the exports under {args.work}; logs stay in {args.work / 'logs'}")

    rows = summarize(results)
    results["table"] = rows
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
