"""Command-line behavior of make_tiny_model.py, trace_model.py and hf_reference.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import hf_reference
import make_tiny_model
import trace_model
from example_inputs import InputSpec, input_names, make_inputs
from hf_reference import compute_reference
from tool_runner import run_tool


def test_tiny_model_is_deterministic_and_rerunnable(tiny_dir, tmp_path):
    out_dir = tmp_path / "tiny"
    for _ in range(2):  # the second run writes over the first
        assert make_tiny_model.main([str(out_dir)]) == 0

    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out_dir / name).read_bytes() == (tiny_dir / name).read_bytes(), name
    for name in ("generation_config.json", "preprocessor_config.json"):
        assert (out_dir / name).is_file(), name


def test_tiny_model_removes_stale_shards(tmp_path):
    stale = [tmp_path / "model-00001-of-00002.safetensors", tmp_path / "model.safetensors.index.json"]
    for path in stale:
        path.write_text("stale")
    (tmp_path / "notes.txt").write_text("kept")

    assert make_tiny_model.main([str(tmp_path)]) == 0

    for path in stale:
        assert not path.exists(), path
    assert (tmp_path / "model.safetensors").is_file()
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_tiny_model_seed_changes_weights(eager_model):
    config = eager_model.config
    first = make_tiny_model.build_model(config, seed=0)
    second = make_tiny_model.build_model(config, seed=1)
    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    first_weight = dict(first.named_parameters())[name]
    assert torch.equal(first_weight, dict(eager_model.named_parameters())[name])
    assert not torch.equal(first_weight, dict(second.named_parameters())[name])


def test_tiny_config_has_requested_sizes(tiny_dir):
    config = json.loads((tiny_dir / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    assert config["model_type"] == "qwen2_vl"
    assert config["tie_word_embeddings"] is True
    assert (text["hidden_size"], text["num_hidden_layers"]) == (64, 2)
    assert (text["num_attention_heads"], text["num_key_value_heads"]) == (4, 2)
    assert text["intermediate_size"] == 128
    assert text["rope_parameters"]["mrope_section"] == [2, 3, 3]
    assert text["rope_parameters"]["rope_theta"] == 10000.0
    assert (vision["depth"], vision["embed_dim"], vision["num_heads"], vision["mlp_ratio"]) == (2, 32, 4, 2)
    assert vision["hidden_size"] == text["hidden_size"]
    ids = [config[key] for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")]
    ids += [text[key] for key in ("bos_token_id", "eos_token_id", "pad_token_id")]
    assert all(0 <= token_id < text["vocab_size"] for token_id in ids)


def test_tokenizer_maps_special_tokens_to_config_ids(tiny_dir):
    from transformers import AutoTokenizer

    config = json.loads((tiny_dir / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    expected = {
        "<|image_pad|>": config["image_token_id"],
        "<|video_pad|>": config["video_token_id"],
        "<|vision_start|>": config["vision_start_token_id"],
        "<|vision_end|>": config["vision_end_token_id"],
        "<|endoftext|>": config["text_config"]["bos_token_id"],
        "<|im_end|>": config["text_config"]["eos_token_id"],
    }
    for token, token_id in expected.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    assert len(tokenizer) == config["text_config"]["vocab_size"]


def test_chat_template_places_image_tokens(tiny_dir):
    from transformers import AutoTokenizer

    config = json.loads((tiny_dir / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text)["input_ids"]

    assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe the image.")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    start = ids.index(config["vision_start_token_id"])
    assert ids[start + 1 : start + 3] == [config["image_token_id"], config["vision_end_token_id"]]
    assert tokenizer.decode(ids) == text


def test_image_processor_matches_vision_config(tiny_dir):
    from transformers import AutoImageProcessor

    config = json.loads((tiny_dir / "config.json").read_text())["vision_config"]
    processor = AutoImageProcessor.from_pretrained(tiny_dir, local_files_only=True)
    image = np.random.default_rng(0).integers(0, 256, size=(100, 150, 3), dtype=np.uint8)

    encoded = processor(images=[image], return_tensors="np")

    t, h, w = (int(value) for value in encoded["image_grid_thw"][0])
    assert t == 1
    assert h % config["spatial_merge_size"] == 0
    assert w % config["spatial_merge_size"] == 0
    patch_features = config["in_channels"] * config["temporal_patch_size"] * config["patch_size"] ** 2
    assert encoded["pixel_values"].shape == (t * h * w, patch_features)


def test_config_json_overrides_defaults(tmp_path):
    overrides = tmp_path / "overrides.json"
    overrides.write_text(json.dumps({"text_config": {"num_hidden_layers": 1}, "vision_config": {"depth": 1}}))
    out_dir = tmp_path / "one_layer"

    assert make_tiny_model.main([str(out_dir), "--config-json", str(overrides), "--seed", "3"]) == 0

    config = json.loads((out_dir / "config.json").read_text())
    assert config["text_config"]["num_hidden_layers"] == 1
    assert config["vision_config"]["depth"] == 1
    assert config["text_config"]["hidden_size"] == 64


def test_config_json_must_be_an_object(tmp_path, capsys):
    overrides = tmp_path / "list.json"
    overrides.write_text("[1, 2]")
    assert make_tiny_model.main([str(tmp_path / "out"), "--config-json", str(overrides)]) == 2
    assert "must contain a JSON object" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"text_config": {"hidden_size": "abc"}}, "text_config.hidden_size must be a positive integer"),
        ({"text_config": {"hidden_size": 96}}, "mrope_section [2, 3, 3] must sum to head_dim / 2"),
        ({"text_config": {"num_key_value_heads": 3}}, "not divisible by num_key_value_heads 3"),
        ({"vision_config": {"hidden_size": 32}}, "must equal text_config.hidden_size 64"),
        ({"image_token_id": 9999}, "image_token_id 9999 is outside vocab_size 512"),
        ({"model_type": "llama"}, "model_type must be 'qwen2_vl'"),
    ],
    ids=["type", "mrope", "gqa", "vision_hidden", "token_id", "model_type"],
)
def test_config_json_rejects_invalid_sizes(overrides, message, tmp_path, capsys):
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(overrides))
    out_dir = tmp_path / "out"

    assert make_tiny_model.main([str(out_dir), "--config-json", str(path)]) == 2

    assert message in capsys.readouterr().err
    assert not (out_dir / "model.safetensors").exists()


def test_trace_rejects_missing_folder(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert trace_model.main([str(missing), "--output", str(tmp_path / "out.pt")]) == 2
    assert f"checkpoint folder not found: {missing}" in capsys.readouterr().err


def test_trace_rejects_other_model_type(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert trace_model.main([str(tmp_path), "--output", str(tmp_path / "out.pt")]) == 2
    assert "model_type 'llama'" in capsys.readouterr().err


def test_trace_rejects_folder_without_config(tmp_path, capsys):
    assert trace_model.main([str(tmp_path), "--output", str(tmp_path / "out.pt")]) == 2
    assert "has no config.json" in capsys.readouterr().err


def test_trace_rejects_unknown_method(tiny_dir, tmp_path, capsys):
    assert trace_model.main([str(tiny_dir), "--output", str(tmp_path / "out.pt"), "--methods", "forward"]) == 2
    assert "invalid --methods 'forward'" in capsys.readouterr().err


def test_trace_rejects_missing_weights(tiny_dir, tmp_path, capsys):
    (tmp_path / "config.json").write_bytes((tiny_dir / "config.json").read_bytes())
    assert trace_model.main([str(tmp_path), "--output", str(tmp_path / "out.pt")]) == 1
    assert f"cannot load {tmp_path} with transformers" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


def test_trace_copies_config_to_other_folder(tiny_dir, tmp_path):
    output = tmp_path / "archive" / "model.pt"
    assert trace_model.main([str(tiny_dir), "--output", str(output), "--methods", "embed_tokens"]) == 0
    assert output.is_file()
    assert (output.parent / "config.json").read_bytes() == (tiny_dir / "config.json").read_bytes()


def test_sdpa_trace_matches_transformers_sdpa(tiny_dir, tmp_path, sdpa_model, sizes):
    output = tmp_path / "sdpa.pt"
    arguments = [str(tiny_dir), "--output", str(output), "--attn", "sdpa", "--methods", "text_generation_with_past"]
    assert trace_model.main(arguments) == 0
    traced = torch.jit.load(str(output))
    # Left padding longer than the past gives query rows with no visible key, where
    # SDPA returns zeros and eager attention averages all values.
    spec = InputSpec(batch=3, sequence=17, past=6, grids=[(1, 4, 4)], left_padding=[0, 9, 2], seed=41)
    inputs = make_inputs(spec, sizes)
    names = input_names("text_generation_with_past", sizes.num_layers)

    expected = compute_reference(sdpa_model, "text_generation_with_past", inputs)
    with torch.no_grad():
        outputs = traced.text_generation_with_past(*[torch.from_numpy(inputs[name]) for name in names])

    for output_tensor, (name, reference) in zip(outputs, expected.items()):
        max_diff = float(np.abs(output_tensor.numpy() - reference).max())
        assert max_diff <= 1e-4, f"{name} max abs diff {max_diff:.3g}"


def test_reference_cli_writes_outputs(tiny_dir, tmp_path, eager_model, sizes):
    method = "text_generation_with_past"
    inputs = make_inputs(InputSpec(batch=2, sequence=12, past=3, grids=[(1, 2, 4)], seed=51), sizes)
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    for name in input_names(method, sizes.num_layers):
        np.save(in_dir / f"{name}.npy", inputs[name])

    result = run_tool(
        "hf_reference.py", "--checkpoint", tiny_dir, "--method", method, "--inputs", in_dir, "--outputs", out_dir
    )
    assert result.returncode == 0, result.stderr

    expected = compute_reference(eager_model, method, inputs)
    written = sorted(path.stem for path in out_dir.glob("*.npy"))
    assert written == sorted(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(np.load(out_dir / f"{name}.npy"), array)


def test_reference_cli_reports_missing_input(tiny_dir, tmp_path, capsys):
    arguments = ["--checkpoint", str(tiny_dir), "--method", "embed_tokens", "--inputs", str(tmp_path)]
    assert hf_reference.main(arguments + ["--outputs", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "missing input" in error
    assert str(tmp_path / "input_ids.npy") in error


def test_reference_rejects_unknown_method(eager_model):
    with pytest.raises(ValueError, match="unknown method"):
        compute_reference(eager_model, "forward", {})
