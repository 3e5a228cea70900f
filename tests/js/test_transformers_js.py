"""Run an image-text-to-text export of the tiny model in transformers.js and compare it with transformers.

generate.mjs loads the exported folder from local files only with @huggingface/transformers
and onnxruntime-node (versions in package.json) and generates greedily from one image and
a chat prompt. Its new token ids must equal those of Qwen2VLForConditionalGeneration.generate
in Python on the same checkpoint, image and prompt.

Environment variables, which ctest sets (tests/CMakeLists.txt):
  QWEN2VL_EXE          the qwen2vl-export binary (default: build/qwen2vl-export)
  QWEN2VL_FIXTURE_DIR  folder whose tiny/ contains the checkpoint and its trace qwen2vl.pt.
                       Without it, the tiny model is made and traced in a temporary folder.
  QWEN2VL_SOURCE_DIR   repository root (default: two folders above this file)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from node_setup import JS_DIR, missing_prerequisite

SOURCE_DIR = Path(os.environ.get("QWEN2VL_SOURCE_DIR", JS_DIR.parents[1]))
PYTHON = os.environ.get("QWEN2VL_PYTHON", sys.executable)

PROMPT = "Describe this image."
MAX_NEW_TOKENS = 20
IMAGE_TOKEN = "<|image_pad|>"
GRAPH_FILES = ("vision_encoder.onnx", "embed_tokens.onnx", "decoder_model_merged.onnx")
# Files that transformers.js reads beside onnx/: the model config, the generation
# defaults, the image processor (its processor_class selects Qwen2VLProcessor) and the tokenizer.
COMPANION_FILES = (
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)

# Two threads at most: the machines that run these tests have two cores, shared with other suites.
torch.set_num_threads(min(2, torch.get_num_threads()))


@dataclass(frozen=True)
class ImageCase:
    name: str
    height: int
    width: int
    # Replace transformers.js' pixel_values with transformers' before generating.
    feed_python_pixels: bool


# Qwen2-VL's processors resize an image to multiples of patch_size * merge_size (28 here).
# transformers.js resizes with sharp and transformers with Pillow, and their bicubic
# filters differ. On 65 x 100 the max absolute difference of the normalized pixel values
# was 0.56 (transformers.js 4.3.2, transformers 5.25), so that case feeds Python's pixel
# values to both models.
# NOTE: a side that is an odd multiple of 14 (70 = 2.5 * 28) rounds differently:
# transformers.js uses Math.round (up) and transformers round() (half to even), so the
# grids differ. The sizes here avoid such ties.
IMAGE_CASES = (
    ImageCase("unresized_56x84", height=56, width=84, feed_python_pixels=False),
    ImageCase("resized_65x100", height=65, width=100, feed_python_pixels=True),
)


@dataclass
class Reference:
    """What transformers (Python) computes for one image."""

    prompt_ids: list[int]
    image_grid_thw: list[list[int]]
    pixel_values: np.ndarray  # [num_patches, 1176] float32
    position_ids: np.ndarray  # [3, 1, prompt length] from get_rope_index
    new_token_ids: list[int]


@dataclass
class CaseRun:
    case: ImageCase
    reference: Reference
    js: dict  # the JSON that generate.mjs wrote
    js_pixel_values: np.ndarray  # transformers.js' own pixel_values, before any replacement


@pytest.fixture(scope="session", autouse=True)
def node_packages_installed():
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)


def run_checked(command: list, timeout: float) -> subprocess.CompletedProcess:
    """Run `command`, failing the test with its output when it exits non-zero."""
    command = [str(part) for part in command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed with exit code {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
    """Folder of the tiny checkpoint, with the traced archive qwen2vl.pt inside."""
    root = os.environ.get("QWEN2VL_FIXTURE_DIR")
    if root:
        tiny = Path(root) / "tiny"
        for name in ("config.json", "model.safetensors", "qwen2vl.pt", *COMPANION_FILES[1:]):
            if not (tiny / name).is_file():
                pytest.fail(f"{tiny / name} is missing; run the ctest fixtures tiny_checkpoint and tiny_traced first")
        return tiny

    tiny = tmp_path_factory.mktemp("fixtures") / "tiny"
    tools = SOURCE_DIR / "tools"
    run_checked([PYTHON, tools / "make_tiny_model.py", tiny], timeout=600)
    run_checked([PYTHON, tools / "trace_model.py", tiny, "--output", tiny / "qwen2vl.pt"], timeout=600)
    return tiny


@pytest.fixture(scope="session")
def export_dir(checkpoint_dir, tmp_path_factory) -> Path:
    """The image-text-to-text export of the tiny checkpoint."""
    exe = Path(os.environ.get("QWEN2VL_EXE", SOURCE_DIR / "build" / "qwen2vl-export"))
    if not exe.is_file():
        pytest.fail(f"qwen2vl-export not found at {exe}; build it or set QWEN2VL_EXE")
    output = tmp_path_factory.mktemp("models") / "tiny-qwen2vl"
    run_checked(
        [exe, "export", "--model", checkpoint_dir / "qwen2vl.pt", "--task", "image-text-to-text", output],
        timeout=600,
    )
    return output


@pytest.fixture(scope="session")
def reference_model(checkpoint_dir):
    """Tokenizer, image processor and model of the tiny checkpoint in transformers."""
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    # AutoProcessor of transformers 5.25 also builds Qwen2VLVideoProcessor, which requires
    # torchvision. The Pillow image processor and the tokenizer are enough for images.
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(checkpoint_dir)
    model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint_dir, dtype=torch.float32).eval()
    return tokenizer, image_processor, model


def chat_messages() -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]


def write_test_image(path: Path, case: ImageCase) -> None:
    """Write a deterministic RGB gradient of the case's size as PNG."""
    rows, columns = np.mgrid[0 : case.height, 0 : case.width]
    pixels = np.stack([(columns * 3) % 256, (rows * 5) % 256, ((rows + columns) * 7) % 256], axis=-1)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def run_python(reference_model, image_path: Path) -> Reference:
    tokenizer, image_processor, model = reference_model
    text = tokenizer.apply_chat_template(chat_messages(), tokenize=False, add_generation_prompt=True)
    with Image.open(image_path) as image:
        image_inputs = image_processor(images=image.convert("RGB"), return_tensors="pt")
    grid = image_inputs["image_grid_thw"]

    # As Qwen2VLProcessor does: one image token per merged patch group.
    tokens_per_image = int(grid[0].prod()) // image_processor.merge_size**2
    text = text.replace(IMAGE_TOKEN, IMAGE_TOKEN * tokens_per_image, 1)
    encoded = tokenizer(text, return_tensors="pt")
    # Qwen2VLProcessor returns mm_token_type_ids (1 for image tokens). Without them,
    # generate in transformers 5.25 silently uses 1-D text positions for every token.
    mm_token_type_ids = (encoded["input_ids"] == model.config.image_token_id).int()

    with torch.no_grad():
        position_ids, _ = model.model.get_rope_index(
            encoded["input_ids"],
            mm_token_type_ids=mm_token_type_ids,
            image_grid_thw=grid,
            attention_mask=encoded["attention_mask"],
        )
        # min_new_tokens masks the end-of-sequence token, as generate.mjs does.
        sequences = model.generate(
            input_ids=encoded["input_ids"],
            attention_mask=encoded["attention_mask"],
            mm_token_type_ids=mm_token_type_ids,
            pixel_values=image_inputs["pixel_values"],
            image_grid_thw=grid,
            max_new_tokens=MAX_NEW_TOKENS,
            min_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
        )
    prompt_length = encoded["input_ids"].shape[1]
    return Reference(
        prompt_ids=encoded["input_ids"][0].tolist(),
        image_grid_thw=grid.tolist(),
        pixel_values=image_inputs["pixel_values"].numpy().astype(np.float32),
        position_ids=position_ids.numpy(),
        new_token_ids=sequences[0, prompt_length:].tolist(),
    )


def run_node(export_dir: Path, image_path: Path, work_dir: Path, pixel_values: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Run generate.mjs and return its JSON and transformers.js' own pixel values."""
    output = work_dir / "transformers_js.json"
    js_pixels_path = work_dir / "js_pixel_values.f32"
    command = [
        "node",
        JS_DIR / "generate.mjs",
        "--model-dir",
        export_dir,
        "--image",
        image_path,
        "--prompt",
        PROMPT,
        "--max-new-tokens",
        MAX_NEW_TOKENS,
        "--output",
        output,
        "--pixel-values-output",
        js_pixels_path,
    ]
    if pixel_values is not None:
        python_pixels_path = work_dir / "python_pixel_values.f32"
        pixel_values.astype("<f4").tofile(python_pixels_path)
        command += ["--pixel-values", python_pixels_path]
    run_checked(command, timeout=300)

    result = json.loads(output.read_text(encoding="utf-8"))
    js_pixels = np.fromfile(js_pixels_path, dtype="<f4").reshape(result["pixel_values_shape"])
    return result, js_pixels


@pytest.fixture(scope="module", params=IMAGE_CASES, ids=lambda case: case.name)
def case_run(request, export_dir, reference_model, tmp_path_factory) -> CaseRun:
    case = request.param
    work_dir = tmp_path_factory.mktemp(case.name)
    image_path = work_dir / "image.png"
    write_test_image(image_path, case)

    reference = run_python(reference_model, image_path)
    fed_pixels = reference.pixel_values if case.feed_python_pixels else None
    js, js_pixels = run_node(export_dir, image_path, work_dir, fed_pixels)
    return CaseRun(case=case, reference=reference, js=js, js_pixel_values=js_pixels)


def test_export_files_match_chunk_counts(export_dir):
    config = json.loads((export_dir / "config.json").read_text(encoding="utf-8"))
    chunks = config["transformers.js_config"]["use_external_data_format"]
    assert sorted(chunks) == sorted(GRAPH_FILES)

    # transformers.js loads chunk i of <graph>.onnx from <graph>.onnx_data, then _data_1, ...
    expected = []
    for graph, count in chunks.items():
        assert isinstance(count, int) and count >= 1, f"{graph}: chunk count {count!r}"
        expected.append(graph)
        expected += [f"{graph}_data" + ("" if index == 0 else f"_{index}") for index in range(count)]
    assert sorted(path.name for path in (export_dir / "onnx").iterdir()) == sorted(expected)

    for name in COMPANION_FILES:
        assert (export_dir / name).is_file(), f"{name} is missing from the export"


def test_config_has_transformers_js_fields(export_dir):
    config = json.loads((export_dir / "config.json").read_text(encoding="utf-8"))
    assert config["transformers.js_config"]["dtype"] == "fp32"
    # transformers.js reads these from the top level for model_type qwen2_vl.
    for key in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size"):
        assert config[key] == config["text_config"][key], key


def test_sessions_have_expected_names(case_run, checkpoint_dir):
    layers = json.loads((checkpoint_dir / "config.json").read_text(encoding="utf-8"))["text_config"]["num_hidden_layers"]
    past = [f"past_key_values.{layer}.{kind}" for layer in range(layers) for kind in ("key", "value")]
    present = [f"present.{layer}.{kind}" for layer in range(layers) for kind in ("key", "value")]
    expected = {
        "vision_encoder": {"inputs": ["pixel_values", "grid_thw"], "outputs": ["image_features"]},
        "embed_tokens": {"inputs": ["input_ids"], "outputs": ["inputs_embeds"]},
        "decoder_model_merged": {
            "inputs": ["inputs_embeds", "attention_mask", "position_ids", *past],
            "outputs": ["logits", *present],
        },
    }
    assert case_run.js["sessions"] == expected


def test_prompt_ids_match_python(case_run):
    assert case_run.js["prompt_ids"] == case_run.reference.prompt_ids


def test_image_grid_matches_python(case_run):
    assert case_run.js["image_grid_thw"] == case_run.reference.image_grid_thw


def test_pixel_values_match_python_without_resize(case_run):
    if case_run.case.feed_python_pixels:
        pytest.skip("the image is resized, and sharp's bicubic filter differs from Pillow's")
    expected = case_run.reference.pixel_values
    assert case_run.js_pixel_values.shape == expected.shape
    np.testing.assert_allclose(case_run.js_pixel_values, expected, rtol=0, atol=1e-5)


def test_prefill_position_ids_match_python(case_run):
    positions = case_run.js["prefill_position_ids"]
    actual = np.array(positions["data"], dtype=np.int64).reshape(positions["dims"])
    np.testing.assert_array_equal(actual, case_run.reference.position_ids)


def test_greedy_tokens_match_python(case_run):
    assert len(case_run.reference.new_token_ids) == MAX_NEW_TOKENS
    assert case_run.js["new_token_ids"] == case_run.reference.new_token_ids
