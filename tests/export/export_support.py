"""Helpers for the export tests: running qwen2vl-export, ONNX Runtime sessions and generation loops.

The generation loops run the exported graphs as a runtime does. The first step
passes the prompt with its images and M-RoPE positions. Each later step passes one
token, the presents of the step before as past, zero image patches and a text
position shifted by the prompt's rope delta.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

SOURCE_DIR = Path(os.environ.get("QWEN2VL_SOURCE_DIR", Path(__file__).resolve().parents[2]))
TOOLS_DIR = Path(os.environ.get("QWEN2VL_TOOLS_DIR", SOURCE_DIR / "tools"))
PYTHON = os.environ.get("QWEN2VL_PYTHON", sys.executable)

if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

from example_inputs import ModelSizes, past_names, present_names  # noqa: E402

TOLERANCE = 1e-4

# The task of each single-graph export and the contract method it exports.
SINGLE_GRAPH_TASKS = {
    "feature-extraction": "feature_extraction",
    "feature-extraction-with-past": "feature_extraction_with_past",
    "text-generation": "text_generation",
    "text-generation-with-past": "text_generation_with_past",
}

# The graphs of the image-text-to-text task and the contract method of each.
SPLIT_GRAPHS = {
    "onnx/vision_encoder.onnx": "vision_encoder",
    "onnx/embed_tokens.onnx": "embed_tokens",
    "onnx/decoder_model_merged.onnx": "decoder",
}

# Every graph file of every task, with its method.
ALL_GRAPHS = [(task, "model.onnx", method) for task, method in SINGLE_GRAPH_TASKS.items()]
ALL_GRAPHS += [("image-text-to-text", file, method) for file, method in SPLIT_GRAPHS.items()]

# Greedy steps of every generation loop, as max_new_tokens of transformers' generate.
GENERATION_STEPS = 10

# Image grids of the generation prompts, in patches. The two images differ in size.
GENERATION_GRIDS = {"text": [], "one_image": [(1, 4, 6)], "two_images": [(1, 4, 4), (1, 8, 12)]}


def find_exporter() -> Path:
    """Return the qwen2vl-export under test: $QWEN2VL_EXE, else build/qwen2vl-export of the source tree."""
    path = Path(os.environ.get("QWEN2VL_EXE", SOURCE_DIR / "build" / "qwen2vl-export"))
    if not path.is_file():
        pytest.fail(f"qwen2vl-export not found at {path}; build it or set QWEN2VL_EXE")
    return path


def run_tool(script: str, *arguments: str | Path) -> subprocess.CompletedProcess:
    """Run a script of tools/ with the test interpreter and return the finished process."""
    command = [PYTHON, str(TOOLS_DIR / script), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def run_exporter(executable: Path, *arguments: str | Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run qwen2vl-export with `arguments` and return the finished process, stderr as text.

    subprocess.TimeoutExpired fails the calling test when the run takes longer than `timeout` seconds.
    """
    environment = {**os.environ, "NO_COLOR": "1"}
    command = [str(executable), *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout, env=environment)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@lru_cache(maxsize=None)
def ort_session(path: str):
    """Load an ONNX model with ONNX Runtime on the CPU, once per path."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Two threads at most: the machines that run these tests have two cores, shared with other suites.
    options.intra_op_num_threads = min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_session(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `session` on the graph inputs taken by name from `feeds` and return the outputs by name."""
    names = [output.name for output in session.get_outputs()]
    arguments = {graph_input.name: feeds[graph_input.name] for graph_input in session.get_inputs()}
    return dict(zip(names, session.run(names, arguments)))


def compare_outputs(outputs: dict[str, np.ndarray], expected: dict[str, np.ndarray], label: str) -> None:
    """Assert that every expected output has the same shape as `outputs`, no NaN and diffs within TOLERANCE."""
    assert list(outputs) == list(expected), f"{label}: outputs {list(outputs)}, expected {list(expected)}"
    for name, reference in expected.items():
        output = outputs[name]
        assert output.shape == reference.shape, f"{label}: {name} shape {output.shape} != {reference.shape}"
        assert not np.isnan(output).any(), f"{label}: {name} contains NaN"
        if reference.size == 0:
            continue
        max_diff = float(np.abs(output - reference).max())
        assert max_diff <= TOLERANCE, f"{label}: {name} max abs diff {max_diff:.3g} > {TOLERANCE}"


@dataclass
class GenerationCase:
    """A batch-1 prompt and transformers' greedy continuation of it."""

    input_ids: np.ndarray  # int64 [1, S]
    pixel_values: np.ndarray  # float32 [patches, 1176]
    image_grid_thw: np.ndarray  # int64 [images, 3]
    mm_token_type_ids: np.ndarray  # int32 [1, S]: 1 at image tokens, 0 elsewhere
    position_ids: np.ndarray  # int64 [3, 1, S], from transformers' get_rope_index for prompts with images
    rope_delta: int  # added to the text position of every generated token
    tokens: list[int]  # transformers' generated tokens
    logits: np.ndarray  # float32 [steps, vocab_size], transformers' logits before each token


def build_prompt(rng: np.random.Generator, sizes: ModelSizes, grids: list[tuple[int, int, int]]) -> np.ndarray:
    """Return input_ids [1, S]: text, then each image as start, image tokens and end followed by text, then text."""
    ordinary = np.setdiff1d(np.arange(sizes.vocab_size), np.array(sizes.special_token_ids))
    parts = [rng.choice(ordinary, 5)]
    for t, h, w in grids:
        count = t * h * w // (sizes.merge_size * sizes.merge_size)
        parts += [[sizes.vision_start_token_id], [sizes.image_token_id] * count, [sizes.vision_end_token_id]]
        parts.append(rng.choice(ordinary, 3))
    parts.append(rng.choice(ordinary, 6))
    return np.concatenate(parts).astype(np.int64)[None, :]


def _generate_with_transformers(model, sizes: ModelSizes, grids, seed: int) -> GenerationCase:
    import torch

    rng = np.random.default_rng(seed)
    input_ids = build_prompt(rng, sizes, grids)
    sequence = input_ids.shape[1]
    attention_mask = np.ones_like(input_ids)
    num_patches = sum(t * h * w for t, h, w in grids)
    pixel_values = rng.standard_normal((num_patches, sizes.patch_features), dtype=np.float32)
    image_grid_thw = np.array(grids, dtype=np.int64).reshape(-1, 3)
    mm_token_type_ids = (input_ids == sizes.image_token_id).astype(np.int32)

    arguments = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
    if grids:
        arguments["pixel_values"] = torch.from_numpy(pixel_values)
        arguments["image_grid_thw"] = torch.from_numpy(image_grid_thw)
        arguments["mm_token_type_ids"] = torch.from_numpy(mm_token_type_ids)
        positions, deltas = model.model.get_rope_index(
            arguments["input_ids"],
            mm_token_type_ids=arguments["mm_token_type_ids"],
            image_grid_thw=arguments["image_grid_thw"],
            attention_mask=arguments["attention_mask"],
        )
        position_ids, rope_delta = positions.numpy(), int(deltas[0, 0])
    else:
        position_ids = np.broadcast_to(np.arange(sequence, dtype=np.int64), (3, 1, sequence)).copy()
        rope_delta = 0

    with torch.no_grad():
        result = model.generate(
            **arguments,
            do_sample=False,
            max_new_tokens=GENERATION_STEPS,
            return_dict_in_generate=True,
            output_logits=True,
        )
    tokens = result.sequences[0, sequence:].tolist()
    logits = np.stack([step[0].numpy() for step in result.logits])
    return GenerationCase(
        input_ids, pixel_values, image_grid_thw, mm_token_type_ids, position_ids, rope_delta, tokens, logits
    )


def reference_generation(model, sizes: ModelSizes, grids: list[tuple[int, int, int]], first_seed: int) -> GenerationCase:
    """Return the first prompt, from seeds counting up from `first_seed`, whose continuation tests the cache.

    The tiny random model often repeats one token, which a loop with a broken cache
    could repeat as well. So the continuation must have GENERATION_STEPS tokens (no
    early end-of-sequence token), at least half of them distinct. Raise RuntimeError
    when none of 30 seeds gives one.
    """
    for seed in range(first_seed, first_seed + 30):
        case = _generate_with_transformers(model, sizes, grids, seed)
        if len(case.tokens) == GENERATION_STEPS and len(set(case.tokens)) >= GENERATION_STEPS // 2:
            return case
    raise RuntimeError(f"no prompt with images {grids} from seed {first_seed} on gives a varied continuation")


def greedy_decode(run_step, case: GenerationCase, sizes: ModelSizes, forced_tokens: list[int] | None = None):
    """Generate GENERATION_STEPS tokens greedily with `run_step`, feeding each step's presents back as past.

    `run_step(feeds)` takes input_ids, attention_mask, position_ids, pixel_values,
    image_grid_thw and the past tensors by contract name and returns (logits, presents
    in contract order). With `forced_tokens`, step i + 1 gets forced_tokens[i] in place
    of the argmax, so the logits of every step can be compared with another run's.
    Return the argmax tokens and the last-position logits [steps, vocab_size].
    """
    empty_past = np.zeros((1, sizes.num_key_value_heads, 0, sizes.head_dim), dtype=np.float32)
    feeds = {
        "input_ids": case.input_ids,
        "position_ids": case.position_ids,
        "pixel_values": case.pixel_values,
        "image_grid_thw": case.image_grid_thw,
    }
    feeds.update({name: empty_past for name in past_names(sizes.num_layers)})
    past_length = 0
    tokens, step_logits = [], []
    for step in range(GENERATION_STEPS):
        new_tokens = feeds["input_ids"].shape[1]
        feeds["attention_mask"] = np.ones((1, past_length + new_tokens), dtype=np.int64)
        logits, presents = run_step(feeds)
        step_logits.append(logits[0, -1])
        tokens.append(int(np.argmax(logits[0, -1])))

        past_length += new_tokens
        next_token = forced_tokens[step] if forced_tokens is not None else tokens[-1]
        feeds = {
            "input_ids": np.array([[next_token]], dtype=np.int64),
            # Text positions continue after the prompt, shifted by the rope delta, equal in all three rows.
            "position_ids": np.full((3, 1, 1), past_length + case.rope_delta, dtype=np.int64),
            "pixel_values": np.zeros((0, sizes.patch_features), dtype=np.float32),
            "image_grid_thw": np.zeros((0, 3), dtype=np.int64),
        }
        feeds.update(dict(zip(past_names(sizes.num_layers), presents)))
    return tokens, np.stack(step_logits)


def single_graph_step(session, sizes: ModelSizes):
    """Return a `run_step` for greedy_decode that runs one text-generation-with-past graph."""

    def run_step(feeds):
        outputs = run_session(session, feeds)
        return outputs["logits"], [outputs[name] for name in present_names(sizes.num_layers)]

    return run_step


def split_graph_step(vision_encoder, embed_tokens, decoder, sizes: ModelSizes):
    """Return a `run_step` for greedy_decode that runs the three graphs of the image-text-to-text layout.

    The vision encoder runs only when the step has image patches. Its features replace
    the embeddings of the image tokens in batch-major order, as transformers' masked_scatter does.
    """

    def run_step(feeds):
        inputs_embeds = run_session(embed_tokens, {"input_ids": feeds["input_ids"]})["inputs_embeds"]
        if feeds["pixel_values"].shape[0] > 0:
            vision_feeds = {"pixel_values": feeds["pixel_values"], "grid_thw": feeds["image_grid_thw"]}
            image_features = run_session(vision_encoder, vision_feeds)["image_features"]
            inputs_embeds = inputs_embeds.copy()
            inputs_embeds[feeds["input_ids"] == sizes.image_token_id] = image_features
        outputs = run_session(decoder, {**feeds, "inputs_embeds": inputs_embeds})
        return outputs["logits"], [outputs[name] for name in present_names(sizes.num_layers)]

    return run_step
