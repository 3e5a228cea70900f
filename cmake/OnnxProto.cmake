# Generate C++ classes for ONNX's ModelProto from the onnx.proto that the onnx
# Python package ships. The generated code is compiled into qwen2vl_onnx only,
# a target that never sees LibTorch's include directories.
set(QWEN2VL_ONNX_PROTO "" CACHE FILEPATH "Path to onnx.proto (default: the one in the onnx Python package)")
if(NOT QWEN2VL_ONNX_PROTO)
  execute_process(
    COMMAND "${QWEN2VL_PYTHON}" -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'onnx.proto'))"
    OUTPUT_VARIABLE detected OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE status)
  if(NOT status EQUAL 0 OR NOT EXISTS "${detected}")
    message(FATAL_ERROR "onnx.proto not found: install the onnx Python package for ${QWEN2VL_PYTHON}, "
                        "or pass -DQWEN2VL_ONNX_PROTO=/path/to/onnx.proto")
  endif()
  set(QWEN2VL_ONNX_PROTO "${detected}" CACHE FILEPATH "Path to onnx.proto" FORCE)
endif()
message(STATUS "ONNX schema: ${QWEN2VL_ONNX_PROTO}")

set(onnx_proto_out "${CMAKE_BINARY_DIR}/generated/onnx")
file(MAKE_DIRECTORY "${onnx_proto_out}")
configure_file("${QWEN2VL_ONNX_PROTO}" "${onnx_proto_out}/onnx.proto" COPYONLY)
# src/onnx/CMakeLists.txt runs protoc: CMake attaches a custom command only to
# targets of the folder that declares it.
set(QWEN2VL_ONNX_PROTO_SOURCES "${onnx_proto_out}/onnx.pb.cc")
set(QWEN2VL_ONNX_PROTO_INCLUDE "${CMAKE_BINARY_DIR}/generated")
