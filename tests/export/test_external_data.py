"""Layout of the external weight files that qwen2vl-export writes beside each graph.

Each graph's weights sit in `<graph>.onnx_data`, each tensor at an offset aligned to
4096 bytes, with no bytes other than the alignment padding. Every weight is the
checkpoint's tensor byte for byte, stored once: the tied embedding and lm_head weight
is one initializer. The .onnx file itself keeps only small constants. The graphs are
read with load_external_data=False, so these tests see the files as written.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from export_support import ALL_GRAPHS

ALIGNMENT = 4096

# Largest tensor allowed inside a .onnx file. The graphs need only shape values and
# scalars inline, a few hundred bytes each for the tiny model.
MAX_INLINE_BYTES = 4096

# Checkpoint tensors that each method reads, by key prefix of the safetensors file.
METHOD_WEIGHT_PREFIXES = {
    "feature_extraction": ("model.", "visual."),
    "feature_extraction_with_past": ("model.", "visual."),
    "text_generation": ("model.", "visual."),
    "text_generation_with_past": ("model.", "visual."),
    "vision_encoder": ("visual.",),
    "embed_tokens": ("model.embed_tokens.",),
    "decoder": ("model.",),
}

# Methods that look up token embeddings and methods that compute logits with the tied weight.
EMBEDDING_METHODS = ("feature_extraction", "feature_extraction_with_past", "text_generation")
EMBEDDING_METHODS += ("text_generation_with_past", "embed_tokens")
LM_HEAD_METHODS = ("text_generation", "text_generation_with_past", "decoder")

EMBEDDING_KEY = "model.embed_tokens.weight"


def graph_params(methods=None) -> list:
    """Return pytest parameters for the `graph` fixture: every graph, or those exporting one of `methods`."""
    selected = [entry for entry in ALL_GRAPHS if methods is None or entry[2] in methods]
    return [pytest.param(entry, id=f"{entry[0]}-{entry[1]}") for entry in selected]


every_graph = pytest.mark.parametrize("graph", graph_params(), indirect=True)


@dataclass
class ExternalTensor:
    name: str
    location: str
    offset: int
    length: int
    data_type: int
    dims: list[int]


def subgraphs(graph: onnx.GraphProto):
    """Yield `graph` and every graph nested in its nodes' attributes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from subgraphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for body in attribute.graphs:
                    yield from subgraphs(body)


def is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def external_tensors(model: onnx.ModelProto) -> list[ExternalTensor]:
    """Return the external initializers of every graph in `model`, in offset order."""
    tensors = []
    for graph in subgraphs(model.graph):
        for initializer in graph.initializer:
            if not is_external(initializer):
                continue
            fields = {entry.key: entry.value for entry in initializer.external_data}
            tensors.append(
                ExternalTensor(
                    name=initializer.name,
                    location=fields["location"],
                    offset=int(fields.get("offset", 0)),
                    length=int(fields["length"]),
                    data_type=initializer.data_type,
                    dims=list(initializer.dims),
                )
            )
    return sorted(tensors, key=lambda tensor: tensor.offset)


def inline_tensor_sizes(model: onnx.ModelProto):
    """Yield (description, bytes) of every tensor stored inside the .onnx file: initializers and Constant values."""
    for graph in subgraphs(model.graph):
        for initializer in graph.initializer:
            if not is_external(initializer):
                yield f"initializer {initializer.name}", numpy_helper.to_array(initializer).nbytes
        for sparse in graph.sparse_initializer:
            nbytes = numpy_helper.to_array(sparse.values).nbytes + numpy_helper.to_array(sparse.indices).nbytes
            yield f"sparse initializer {sparse.values.name}", nbytes
        for node in graph.node:
            for attribute in node.attribute:
                label = f"attribute {attribute.name} of {node.op_type} node {node.name}"
                if attribute.type == onnx.AttributeProto.TENSOR and not is_external(attribute.t):
                    yield label, numpy_helper.to_array(attribute.t).nbytes
                elif attribute.type == onnx.AttributeProto.TENSORS:
                    for tensor in attribute.tensors:
                        if not is_external(tensor):
                            yield label, numpy_helper.to_array(tensor).nbytes
                elif attribute.type == onnx.AttributeProto.FLOATS:
                    yield label, 4 * len(attribute.floats)
                elif attribute.type == onnx.AttributeProto.INTS:
                    yield label, 8 * len(attribute.ints)


def checkpoint_key(onnx_name: str) -> str:
    """Return the safetensors key of the module weight that an initializer is named after.

    Initializers carry the module path in the trace (`model.` + the transformers
    attribute path). transformers 5.25 saves Qwen2-VL with the older key layout:
    language model weights under `model.`, the vision tower under `visual.`.
    """
    for prefix, key_prefix in (("model.model.language_model.", "model."), ("model.model.visual.", "visual.")):
        if onnx_name.startswith(prefix):
            return key_prefix + onnx_name.removeprefix(prefix)
    return onnx_name.removeprefix("model.")


def read_external(path, tensor: ExternalTensor) -> bytes:
    with open(path, "rb") as file:
        file.seek(tensor.offset)
        return file.read(tensor.length)


@pytest.fixture(scope="module")
def checkpoint(tiny_dir) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(tiny_dir / "model.safetensors"))


@pytest.fixture
def graph(request, task_exports):
    """(path of the .onnx file, the model without external data, the method it exports)."""
    task, file, method = request.param
    path = task_exports.output_dir(task) / file
    return path, onnx.load(str(path), load_external_data=False), method


@every_graph
def test_data_file_exists(graph):
    path, model, _ = graph
    data_path = path.with_name(path.name + "_data")
    assert data_path.is_file()
    assert {tensor.location for tensor in external_tensors(model)} == {data_path.name}


@every_graph
def test_offsets_are_aligned(graph):
    _, model, _ = graph
    for tensor in external_tensors(model):
        assert tensor.offset % ALIGNMENT == 0, f"{tensor.name} at offset {tensor.offset}"


@every_graph
def test_tensors_do_not_overlap(graph):
    _, model, _ = graph
    end = 0
    for tensor in external_tensors(model):
        assert tensor.offset >= end, f"{tensor.name} at offset {tensor.offset} overlaps the previous tensor"
        end = tensor.offset + tensor.length


@every_graph
def test_lengths_match_shapes(graph):
    _, model, _ = graph
    for tensor in external_tensors(model):
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        assert tensor.length == math.prod(tensor.dims) * itemsize, f"{tensor.name} {tensor.dims}"


@every_graph
def test_data_file_has_only_alignment_padding(graph):
    # Packing the tensors in offset order, each at the next aligned offset, gives the
    # smallest file that contains them. The written file must have exactly that size.
    path, model, _ = graph
    tensors = external_tensors(model)
    expected_size = 0
    for tensor in tensors:
        expected_size = -(-expected_size // ALIGNMENT) * ALIGNMENT + tensor.length
    padding = expected_size - sum(tensor.length for tensor in tensors)
    assert path.with_name(path.name + "_data").stat().st_size == expected_size, f"expected {padding} padding bytes"


@every_graph
def test_data_contains_method_weights(graph, checkpoint):
    _, model, method = graph
    tensors = external_tensors(model)
    expected_keys = {key for key in checkpoint if key.startswith(METHOD_WEIGHT_PREFIXES[method])}
    expected_bytes = sum(checkpoint[key].nbytes for key in expected_keys)
    assert sorted(checkpoint_key(tensor.name) for tensor in tensors) == sorted(expected_keys)
    assert sum(tensor.length for tensor in tensors) == expected_bytes


@every_graph
def test_external_bytes_equal_checkpoint(graph, checkpoint):
    path, model, _ = graph
    data_path = path.with_name(path.name + "_data")
    for tensor in external_tensors(model):
        key = checkpoint_key(tensor.name)
        assert key in checkpoint, f"{tensor.name} is not a checkpoint weight"
        expected = checkpoint[key].astype(checkpoint[key].dtype.newbyteorder("<")).tobytes()
        assert read_external(data_path, tensor) == expected, f"{tensor.name} differs from checkpoint {key}"


@every_graph
def test_external_tensors_are_distinct(graph):
    path, model, _ = graph
    data_path = path.with_name(path.name + "_data")
    first_with_digest = {}
    for tensor in external_tensors(model):
        digest = hashlib.sha256(read_external(data_path, tensor)).hexdigest()
        earlier = first_with_digest.setdefault(digest, tensor.name)
        assert earlier == tensor.name, f"{tensor.name} repeats the bytes of {earlier}"


@pytest.mark.parametrize("graph", graph_params(EMBEDDING_METHODS + LM_HEAD_METHODS), indirect=True)
def test_tied_weight_is_one_initializer(graph, checkpoint):
    path, model, _ = graph
    data_path = path.with_name(path.name + "_data")
    embedding = checkpoint[EMBEDDING_KEY].tobytes()
    copies = [tensor.name for tensor in external_tensors(model) if read_external(data_path, tensor) == embedding]
    initializer_names = [initializer.name for graph in subgraphs(model.graph) for initializer in graph.initializer]
    assert len(copies) == 1, f"the embedding weight is stored as {copies}"
    assert not [name for name in initializer_names if "lm_head" in name]


def consumers(model: onnx.ModelProto, name: str) -> list[str]:
    return [node.op_type for graph in subgraphs(model.graph) for node in graph.node if name in node.input]


def embedding_initializer(model: onnx.ModelProto) -> str:
    names = [tensor.name for tensor in external_tensors(model) if checkpoint_key(tensor.name) == EMBEDDING_KEY]
    assert len(names) == 1, f"initializers of {EMBEDDING_KEY}: {names}"
    return names[0]


@pytest.mark.parametrize("graph", graph_params(EMBEDDING_METHODS), indirect=True)
def test_tied_weight_feeds_token_lookup(graph):
    _, model, _ = graph
    assert "Gather" in consumers(model, embedding_initializer(model))


@pytest.mark.parametrize("graph", graph_params(LM_HEAD_METHODS), indirect=True)
def test_tied_weight_feeds_lm_head(graph):
    _, model, _ = graph
    assert {"Gemm", "MatMul"} & set(consumers(model, embedding_initializer(model)))


@every_graph
def test_no_large_inline_tensor(graph):
    _, model, _ = graph
    for description, nbytes in inline_tensor_sizes(model):
        assert nbytes <= MAX_INLINE_BYTES, f"{description} stores {nbytes} bytes in the .onnx file"
