# qwen2vl_subprocess: run_process (include/qwen2vl/util/subprocess.h). Its own
# target, without LibTorch, so that the validator and the tests can link it
# alone. Included from src/util/CMakeLists.txt, which must not compile
# subprocess.cpp a second time (exclude it from any *.cpp glob there).
qwen2vl_library(qwen2vl_subprocess
  SOURCES "${CMAKE_CURRENT_LIST_DIR}/subprocess.cpp"
  DEPENDS qwen2vl_util)
