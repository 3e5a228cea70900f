"""Each exported task against unmodified transformers.

Every task of the tiny fixture exports with exit code 0 and gives graphs that pass
the full ONNX checker. The four single-graph tasks then run in ONNX Runtime at size
sets other than the exporter's profile and validation sets. These cover batch 1 and
3, sequence 1 and 37, past 0 and 29, zero, one and three images of different grids,
and left padding. Every output must match tools/hf_reference.py within 1e-4.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from export_support import ALL_GRAPHS, SINGLE_GRAPH_TASKS, compare_outputs, ort_session, run_session
from example_inputs import WITH_PAST_METHODS, InputSpec, input_names, make_inputs, output_names
from hf_reference import compute_reference

ALL_TASKS = [*SINGLE_GRAPH_TASKS, "image-text-to-text"]

# Size sets with past. Tasks without past run each set with past 0 and the padding
# that falls on the new tokens, so every task runs at batch 1 and 3, sequence 1 and
# 37 and with zero, one and three images.
SIZE_SETS = [
    InputSpec(batch=1, sequence=1, past=29, grids=[], seed=41),
    InputSpec(batch=3, sequence=37, past=0, grids=[(1, 2, 2), (1, 8, 12), (1, 4, 6)], left_padding=[0, 3, 5], seed=42),
    InputSpec(batch=1, sequence=37, past=29, grids=[(1, 6, 10)], seed=43),
    InputSpec(batch=3, sequence=37, past=29, grids=[(1, 4, 6)], left_padding=[0, 31, 2], seed=44),
]


def without_past(spec: InputSpec) -> InputSpec:
    padding = [max(count - spec.past, 0) for count in spec.left_padding]
    return InputSpec(
        batch=spec.batch, sequence=spec.sequence, past=0, grids=spec.grids, left_padding=padding, seed=spec.seed
    )


def size_set_id(spec: InputSpec) -> str:
    padded = "_padded" if any(spec.left_padding) else ""
    return f"batch{spec.batch}_seq{spec.sequence}_past{spec.past}_images{len(spec.grids)}{padded}"


def task_size_sets() -> list:
    params = []
    for task, method in SINGLE_GRAPH_TASKS.items():
        for spec in SIZE_SETS:
            if method not in WITH_PAST_METHODS:
                spec = without_past(spec)
            params.append(pytest.param(task, spec, id=f"{task}-{size_set_id(spec)}"))
    return params


@pytest.mark.parametrize("task", ALL_TASKS)
def test_export_exits_zero(task, task_exports):
    process = task_exports.process(task)
    assert process.returncode == 0, process.stderr


@pytest.mark.parametrize("task, file, method", ALL_GRAPHS, ids=[f"{task}-{file}" for task, file, _ in ALL_GRAPHS])
def test_graph_passes_full_check(task, file, method, task_exports):
    path = task_exports.output_dir(task) / file
    # A path, not a loaded model, so that the checker resolves the external data beside it.
    onnx.checker.check_model(str(path), full_check=True)


@pytest.mark.parametrize("task, file, method", ALL_GRAPHS, ids=[f"{task}-{file}" for task, file, _ in ALL_GRAPHS])
def test_graph_follows_contract_names(task, file, method, task_exports, sizes):
    model = onnx.load(str(task_exports.output_dir(task) / file), load_external_data=False)
    assert [value.name for value in model.graph.input] == input_names(method, sizes.num_layers)
    assert [value.name for value in model.graph.output] == output_names(method, sizes.num_layers)
    assert [(entry.domain, entry.version) for entry in model.opset_import] == [("", 18)]


@pytest.mark.parametrize("task, spec", task_size_sets())
def test_task_matches_transformers(task, spec, task_exports, eager_model, sizes):
    method = SINGLE_GRAPH_TASKS[task]
    inputs = make_inputs(spec, sizes)
    expected = compute_reference(eager_model, method, inputs)

    session = ort_session(str(task_exports.output_dir(task) / "model.onnx"))
    outputs = run_session(session, inputs)

    first = next(iter(expected.values()))
    assert np.abs(first).max() > 0.1, "reference output is too small to compare"
    compare_outputs(outputs, expected, f"{task} at {size_set_id(spec)}")
