"""The traced archive against unmodified transformers at sizes other than the traced ones.

Each method of the fixture archive runs at several size sets (batch 1 and 3, sequence
1 and 37, past 0 and 29, zero to three images of different grids, left padding) and
must match tools/hf_reference.py within 1e-4. A size that the trace had frozen would
fail here with a shape error or a wrong result.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from example_inputs import METHODS, WITH_PAST_METHODS, InputSpec, input_names, make_inputs, output_names, select_inputs
from hf_reference import compute_reference

TOLERANCE = 1e-4

# Size sets for the methods with past key/values. Methods without past use the same
# set with past 0 and the padding that falls on the new tokens.
SIZE_SETS = {
    "b1_s1_p29_no_images": InputSpec(batch=1, sequence=1, past=29, grids=[], seed=11),
    "b3_s37_p0_three_images": InputSpec(
        batch=3, sequence=37, past=0, grids=[(1, 2, 2), (1, 8, 12), (1, 4, 6)], left_padding=[0, 3, 5], seed=12
    ),
    "b1_s37_p29_one_image": InputSpec(batch=1, sequence=37, past=29, grids=[(1, 10, 6)], left_padding=[31], seed=13),
    "b3_s1_p29_padded": InputSpec(batch=3, sequence=1, past=29, grids=[], left_padding=[4, 0, 29], seed=14),
    "b3_s37_p29_one_image": InputSpec(batch=3, sequence=37, past=29, grids=[(1, 6, 4)], left_padding=[0, 30, 2], seed=15),
}

VISION_SIZE_SETS = {
    "one_small_image": [(1, 2, 2)],
    "three_images": [(1, 8, 12), (2, 4, 4), (1, 6, 2)],
    "video_four_frames": [(4, 4, 6)],
    "zero_images": [],
}


def without_past(spec: InputSpec) -> InputSpec:
    padding = [max(count - spec.past, 0) for count in spec.left_padding]
    return InputSpec(
        batch=spec.batch, sequence=spec.sequence, past=0, grids=spec.grids, left_padding=padding, seed=spec.seed
    )


@pytest.fixture(scope="module")
def traced(traced_path):
    return torch.jit.load(str(traced_path))


@pytest.fixture(scope="module")
def metadata(traced_path) -> dict:
    with zipfile.ZipFile(traced_path) as archive:
        name = next(entry for entry in archive.namelist() if entry.endswith("extra/qwen2vl_export.json"))
        return json.loads(archive.read(name))


def run_traced(traced, method, arrays):
    with torch.no_grad():
        result = getattr(traced, method)(*[torch.from_numpy(array) for array in arrays])
    outputs = [result] if isinstance(result, torch.Tensor) else list(result)
    return [output.numpy() for output in outputs]


def compare(method, outputs, expected, label):
    assert len(outputs) == len(expected), f"{method} returned {len(outputs)} outputs, expected {len(expected)}"
    for output, (name, reference) in zip(outputs, expected.items()):
        assert output.shape == reference.shape, f"{label}: {name} shape {output.shape} != {reference.shape}"
        assert not np.isnan(output).any(), f"{label}: {name} contains NaN"
        if reference.size == 0:
            continue
        max_diff = float(np.abs(output - reference).max())
        assert max_diff <= TOLERANCE, f"{label}: {name} max abs diff {max_diff:.3g}"


@pytest.mark.parametrize("size_set", list(SIZE_SETS))
@pytest.mark.parametrize("method", [m for m in METHODS if m != "vision_encoder"])
def test_method_matches_transformers(method, size_set, traced, eager_model, sizes):
    spec = SIZE_SETS[size_set]
    if method not in WITH_PAST_METHODS:
        spec = without_past(spec)
    inputs = make_inputs(spec, sizes)

    expected = compute_reference(eager_model, method, inputs)
    outputs = run_traced(traced, method, select_inputs(method, inputs, sizes.num_layers))

    first = next(iter(expected.values()))
    assert np.abs(first).max() > 0.1, "reference output is too small to compare"
    compare(method, outputs, expected, f"{method} at {size_set}")


@pytest.mark.parametrize("size_set", list(VISION_SIZE_SETS))
def test_vision_encoder_matches_transformers(size_set, traced, eager_model, sizes):
    inputs = make_inputs(InputSpec(batch=1, sequence=80, grids=VISION_SIZE_SETS[size_set], seed=21), sizes)

    expected = compute_reference(eager_model, "vision_encoder", inputs)
    outputs = run_traced(traced, "vision_encoder", select_inputs("vision_encoder", inputs, sizes.num_layers))

    compare("vision_encoder", outputs, expected, f"vision_encoder at {size_set}")


def test_size_sets_differ_from_traced_shapes(metadata, sizes):
    for method in metadata["methods"]:
        traced_shapes = metadata["traced_shapes"][method]
        for size_set, spec in SIZE_SETS.items():
            if method not in WITH_PAST_METHODS:
                spec = without_past(spec)
            arrays = select_inputs(method, make_inputs(spec, sizes), sizes.num_layers)
            assert [list(array.shape) for array in arrays] != traced_shapes, f"{method} at {size_set}"


def test_metadata_describes_archive(metadata, sizes):
    assert metadata["contract_version"] == 1
    assert metadata["methods"] == list(METHODS)
    assert metadata["num_hidden_layers"] == sizes.num_layers
    assert metadata["vision"] == "dynamic"
    assert metadata["attn_implementation"] == "eager"
    assert metadata["causal_mask"] == "additive"
    assert metadata["image_token_id"] == sizes.image_token_id
    assert metadata["torch_version"] == torch.__version__
    for method in METHODS:
        assert metadata["input_names"][method] == input_names(method, sizes.num_layers)
        assert metadata["output_names"][method] == output_names(method, sizes.num_layers)
        assert len(metadata["traced_shapes"][method]) == len(metadata["input_names"][method])


def test_traced_sizes_avoid_zero_and_one(metadata):
    for method, shapes in metadata["traced_shapes"].items():
        for name, shape in zip(metadata["input_names"][method], shapes):
            assert 0 not in shape, f"{method} traced {name} with shape {shape}"
            assert 1 not in shape, f"{method} traced {name} with shape {shape}"


def test_archive_stores_tied_weights_once(traced):
    embedding = traced.model.model.language_model.embed_tokens.weight
    lm_head = traced.model.lm_head.weight
    assert embedding.data_ptr() == lm_head.data_ptr()


def test_archive_stores_each_weight_once(traced_path, eager_model):
    # named_parameters() lists a tied or shared tensor once. The archive adds only the
    # rotary inv_freq buffers, so 1 % over the parameter bytes allows no second copy.
    parameter_bytes = sum(p.numel() * p.element_size() for p in eager_model.parameters())
    with zipfile.ZipFile(traced_path) as archive:
        data_bytes = sum(entry.file_size for entry in archive.infolist() if "/data/" in entry.filename)
    assert data_bytes >= parameter_bytes
    assert data_bytes <= 1.01 * parameter_bytes
