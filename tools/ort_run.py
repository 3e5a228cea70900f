#!/usr/bin/env python3
"""Run an ONNX model with ONNX Runtime on inputs stored as .npy files.

    ort_run.py MODEL.onnx IN_DIR OUT_DIR [--check] [--threads N] [--output-list FILE]

Reads IN_DIR/<input name>.npy for every graph input, runs the model on the
CPUExecutionProvider and writes OUT_DIR/<output name>.npy for every graph
output. Names may contain dots (past_key_values.0.key.npy).

qwen2vl-export embeds this script in its binary and runs it for validation;
it also works on its own.

Exit codes (the same numbers as qwen2vl-export's):
  0  success
  1  onnx.checker rejected the model, or ONNX Runtime failed to load or run it
  2  invalid command line
  3  the model file or an input is missing, or an input does not match the model
  6  an output file could not be written
  7  a Python package (numpy, onnxruntime, onnx for --check) is not installed
Every failure prints one line to stderr.
"""

import argparse
import os
import sys

EXIT_MODEL_FAILED = 1
EXIT_INVALID_INPUT = 3
EXIT_IO = 6
EXIT_MISSING_DEPENDENCY = 7

# ONNX Runtime's type strings and the numpy dtypes that .npy files store them as.
ORT_TYPE_TO_NUMPY = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class Failure(Exception):
    """A failure reported as one line on stderr with an exit code."""

    def __init__(self, exit_code, message):
        super().__init__(message)
        self.exit_code = exit_code


def one_line(error):
    """Return the exception text on one line: ONNX Runtime's messages span several."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def import_package(name):
    try:
        return __import__(name)
    except ImportError as error:
        raise Failure(
            EXIT_MISSING_DEPENDENCY,
            f"the Python package '{name}' is not installed for {sys.executable} ({one_line(error)}); "
            f"install it with: {sys.executable} -m pip install {name}",
        ) from error


def check_file_name(name, kind):
    """Reject a graph input or output name that cannot be a file name in IN_DIR or OUT_DIR."""
    if name in ("", ".", "..") or any(c in name for c in "/\\\0\n"):
        raise Failure(
            EXIT_INVALID_INPUT,
            f"the model's {kind} name {name!r} cannot be used as a .npy file name "
            "(it is empty or contains '/', '\\', a newline or a NUL byte)",
        )


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run an ONNX model with ONNX Runtime on .npy inputs and write .npy outputs."
    )
    parser.add_argument("model", help="the .onnx file; external data files sit beside it")
    parser.add_argument("in_dir", help="folder with one <input name>.npy per graph input")
    parser.add_argument("out_dir", help="folder that receives one <output name>.npy per graph output")
    parser.add_argument(
        "--check",
        action="store_true",
        help="run onnx.checker.check_model(full_check=True) on the model first",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads for ONNX Runtime (default 1, which keeps results reproducible)",
    )
    parser.add_argument(
        "--output-list",
        metavar="FILE",
        help="also write the output names to FILE, one per line, in the model's order",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def check_model(model_path):
    onnx = import_package("onnx")
    try:
        onnx.checker.check_model(model_path, full_check=True)
    except Exception as error:  # the checker raises several exception types
        raise Failure(EXIT_MODEL_FAILED, f"onnx.checker rejected {model_path}: {one_line(error)}") from error


def create_session(ort, model_path, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.use_deterministic_compute = True
    options.log_severity_level = 3  # errors only, so that stderr stays one line on failure
    try:
        return ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception classes
        raise Failure(
            EXIT_MODEL_FAILED, f"onnxruntime could not load {model_path}: {one_line(error)}"
        ) from error


def load_inputs(np, session, in_dir):
    """Read one .npy per session input and check its dtype and shape against the model."""
    model_inputs = session.get_inputs()
    expected_files = set()
    feeds = {}
    dim_values = {}  # dim_param name -> (size, input that set it)

    for model_input in model_inputs:
        check_file_name(model_input.name, "input")
        path = os.path.join(in_dir, model_input.name + ".npy")
        expected_files.add(model_input.name + ".npy")
        if not os.path.isfile(path):
            raise Failure(EXIT_INVALID_INPUT, f"input '{model_input.name}' is missing: {path} not found")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise Failure(EXIT_INVALID_INPUT, f"input file {path} is not a valid .npy file: {one_line(error)}") from error

        expected_dtype = ORT_TYPE_TO_NUMPY.get(model_input.type)
        if expected_dtype is None:
            raise Failure(
                EXIT_INVALID_INPUT,
                f"input '{model_input.name}' has type {model_input.type}, which this runner cannot read from .npy",
            )
        if array.dtype != np.dtype(expected_dtype):
            raise Failure(
                EXIT_INVALID_INPUT,
                f"input '{model_input.name}' must be {expected_dtype} but {path} contains {array.dtype}",
            )
        check_shape(model_input, array.shape, dim_values)
        feeds[model_input.name] = np.asarray(array, order="C")

    unused = sorted(
        name for name in os.listdir(in_dir) if name.endswith(".npy") and name not in expected_files
    )
    if unused:
        known = ", ".join(i.name for i in model_inputs) or "none"
        raise Failure(
            EXIT_INVALID_INPUT,
            f"{in_dir} has {', '.join(unused)} but the model has no such input (its inputs: {known})",
        )
    return feeds


def check_shape(model_input, shape, dim_values):
    expected = model_input.shape
    if len(shape) != len(expected):
        raise Failure(
            EXIT_INVALID_INPUT,
            f"input '{model_input.name}' must have rank {len(expected)} {list(expected)} but has shape {list(shape)}",
        )
    for axis, (size, dim) in enumerate(zip(shape, expected)):
        if isinstance(dim, int) and size != dim:
            raise Failure(
                EXIT_INVALID_INPUT,
                f"input '{model_input.name}' must have size {dim} on axis {axis} "
                f"(shape {list(expected)}) but has shape {list(shape)}",
            )
        if isinstance(dim, str) and dim:
            seen = dim_values.setdefault(dim, (size, model_input.name))
            if seen[0] != size:
                raise Failure(
                    EXIT_INVALID_INPUT,
                    f"dynamic axis '{dim}' is {seen[0]} in input '{seen[1]}' "
                    f"but {size} in input '{model_input.name}'",
                )


def write_outputs(np, names, values, out_dir, output_list):
    try:
        os.makedirs(out_dir, exist_ok=True)
        for name, value in zip(names, values):
            np.save(os.path.join(out_dir, name + ".npy"), np.asarray(value, order="C"), allow_pickle=False)
        if output_list:
            with open(output_list, "w", encoding="utf-8") as handle:
                handle.writelines(name + "\n" for name in names)
    except OSError as error:
        raise Failure(EXIT_IO, f"writing outputs to {out_dir} failed: {one_line(error)}") from error


def run(args):
    np = import_package("numpy")
    ort = import_package("onnxruntime")
    if not os.path.isfile(args.model):
        raise Failure(EXIT_INVALID_INPUT, f"model file {args.model} not found")
    if not os.path.isdir(args.in_dir):
        raise Failure(EXIT_INVALID_INPUT, f"input folder {args.in_dir} not found")
    if args.check:
        check_model(args.model)

    session = create_session(ort, args.model, args.threads)
    names = [output.name for output in session.get_outputs()]
    for name in names:
        check_file_name(name, "output")
    feeds = load_inputs(np, session, args.in_dir)
    try:
        values = session.run(names, feeds)
    except Exception as error:  # onnxruntime raises its own exception classes
        raise Failure(EXIT_MODEL_FAILED, f"onnxruntime failed to run {args.model}: {one_line(error)}") from error
    write_outputs(np, names, values, args.out_dir, args.output_list)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except Failure as failure:
        print(f"ort_run.py: error: {failure}", file=sys.stderr)
        return failure.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
