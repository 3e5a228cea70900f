#!/usr/bin/env bash
# Install what qwen2vl-export needs from the package registries and build it
# into build/ (the binary is build/qwen2vl-export). Runs on Debian 12 and 13.
# Every step checks whether it is already done, so a rerun only rebuilds what
# changed.
#
# Usage: tools/setup.sh [--with-node] [build|demo|test]
#
#   build        (default) Debian packages, the Python venv .venv, configure and build
#   demo         build, then make the tiny random checkpoint out/tiny, trace it to
#                out/tiny/qwen2vl.pt and export it to out/tiny-text-generation-with-past
#   test         build everything, then run ctest
#   --with-node  also install the npm packages of the JavaScript tests (tests/js/package.json
#                and its package-lock.json) into tests/js/node_modules/
#
# Environment:
#   PYTHON        interpreter that creates .venv (default: python3.11, else python3)
#   BUILD_JOBS    parallel compile jobs (default: the number of cores)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="$ROOT/build"
VENV="$ROOT/.venv"
VENV_PYTHON="$VENV/bin/python"
REQUIREMENTS="$ROOT/tools/requirements.txt"
JOBS="${BUILD_JOBS:-$(nproc)}"

APT_PACKAGES=(cmake ninja-build g++ libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev
              libprotobuf-dev protobuf-compiler)
# clang and libclang-rt-dev (libFuzzer and the sanitizer runtimes) build the fuzz
# test in tests/fuzz. They are Debian's packages for the default LLVM version, so
# they pull in clang-14 and libclang-rt-14-dev on Debian 12 and clang-19 and
# libclang-rt-19-dev on Debian 13. Without them the build still works and the
# fuzz test reports itself skipped.
FUZZ_APT_PACKAGES=(clang libclang-rt-dev)

JS_TESTS_DIR="$ROOT/tests/js"

DEMO_CHECKPOINT="$ROOT/out/tiny"
DEMO_ARCHIVE="$DEMO_CHECKPOINT/qwen2vl.pt"
DEMO_OUTPUT="$ROOT/out/tiny-text-generation-with-past"

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
run() {
  printf '    $ %s\n' "$*"
  "$@"
}
fail() {
  printf 'setup.sh: error: %s\n' "$*" >&2
  exit 1
}

# Print the comment block at the top of this file.
usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

# --- arguments ------------------------------------------------------------------------------
command="build"
with_node=0
for argument in "$@"; do
  case "$argument" in
    build | demo | test) command="$argument" ;;
    --with-node) with_node=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      fail "unknown argument '$argument'"
      ;;
  esac
done
trap 'printf "setup.sh: error: the step above failed (exit %s)\n" "$?" >&2' ERR

# Run a command as root: directly when we are root (CI), else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    run "$@"
  elif command -v sudo >/dev/null 2>&1; then
    run sudo "$@"
  else
    fail "installing Debian packages needs root; run as root or install sudo, then rerun"
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

missing_debian_packages() {
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      printf '%s\n' "$package"
    fi
  done
}

# --- steps ----------------------------------------------------------------------------------
install_debian_packages() {
  step "Debian packages"
  command -v dpkg-query >/dev/null 2>&1 || fail "dpkg-query not found: this script supports Debian 12 and 13 only"
  local missing
  mapfile -t missing < <(missing_debian_packages "${APT_PACKAGES[@]}")
  if [ "${#missing[@]}" -eq 0 ]; then
    note "already installed: ${APT_PACKAGES[*]}"
  else
    apt_install "${missing[@]}"
  fi

  mapfile -t missing < <(missing_debian_packages "${FUZZ_APT_PACKAGES[@]}")
  if [ "${#missing[@]}" -eq 0 ]; then
    note "already installed: ${FUZZ_APT_PACKAGES[*]}"
  elif ! apt_install "${missing[@]}"; then
    note "warning: installing ${missing[*]} failed, so ctest will skip the fuzz test (fuzz.config_parser)"
  fi
}

choose_python() {
  if [ -n "${PYTHON:-}" ]; then
    printf '%s\n' "$PYTHON"
  elif command -v python3.11 >/dev/null 2>&1; then
    printf 'python3.11\n'
  else
    printf 'python3\n'
  fi
}

create_venv() {
  step "Python environment $VENV"
  if [ -x "$VENV_PYTHON" ]; then
    note "using the existing venv ($("$VENV_PYTHON" --version 2>&1))"
  else
    local python
    python="$(choose_python)"
    command -v "$python" >/dev/null 2>&1 || apt_install python3 python3-venv
    if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      # Debian's own python3 ships venv support in a separate package.
      apt_install python3-venv
    fi
    local version
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$version" != "3.11" ]; then
      note "NOTE: $python is Python $version. The CPU wheel of torch 2.13.0 on this project's machines is"
      note "built for Python 3.11; for $version pip downloads PyPI's CUDA build (several GB)."
      note "Set PYTHON=/path/to/python3.11 to avoid that."
    fi
    run "$python" -m venv "$VENV"
  fi

  # The stamp contains a hash of requirements.txt: pip runs again only when it changed.
  local stamp="$VENV/.qwen2vl-requirements.sha256"
  local wanted
  wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    note "packages of tools/requirements.txt already installed"
  else
    run "$VENV_PYTHON" -m pip install --no-input --disable-pip-version-check -r "$REQUIREMENTS"
    printf '%s\n' "$wanted" >"$stamp"
  fi
  note "$("$VENV_PYTHON" -c 'import torch; print("torch", torch.__version__, "C++11 ABI:", torch._C._GLIBCXX_USE_CXX11_ABI)')"
}

install_node_packages() {
  step "npm packages of $JS_TESTS_DIR (--with-node)"
  if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  # sharp, which transformers.js reads images with, declares "node": ">=20.9.0".
  if ! node -e 'const [major, minor] = process.versions.node.split(".").map(Number);
                process.exit(major > 20 || (major === 20 && minor >= 9) ? 0 : 1)'; then
    fail "node $(node --version) is too old for the JavaScript tests: they need Node.js 20.9 or newer (Debian 12's nodejs package is 18)"
  fi
  # The stamp contains a hash of package.json and package-lock.json, so npm runs again
  # only when they change. npm ci deletes node_modules/, and the stamp with it.
  local stamp="$JS_TESTS_DIR/node_modules/.qwen2vl-npm-packages.sha256"
  local wanted
  wanted="$(cat "$JS_TESTS_DIR/package.json" "$JS_TESTS_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    note "packages of tests/js/package-lock.json already installed"
    return
  fi
  # npm ci installs exactly the versions of package-lock.json. --ignore-scripts skips
  # the install script of onnxruntime-node, which would download GPU binaries from
  # outside the npm registry. Its package already contains the CPU binaries.
  (cd "$JS_TESTS_DIR" && run npm ci --ignore-scripts --no-audit --no-fund)
  printf '%s\n' "$wanted" >"$stamp"
}

configure() {
  step "Configure $BUILD_DIR"
  local cache="$BUILD_DIR/CMakeCache.txt"
  if [ -f "$cache" ] && grep -qx "QWEN2VL_PYTHON:FILEPATH=$VENV_PYTHON" "$cache" &&
    grep -qx "CMAKE_GENERATOR:INTERNAL=Ninja" "$cache"; then
    note "already configured (ninja reruns CMake when a CMakeLists.txt changes)"
    return
  fi
  if [ -f "$cache" ] && ! grep -qx "CMAKE_GENERATOR:INTERNAL=Ninja" "$cache"; then
    note "the existing build folder uses another generator; starting it over"
    run rm -rf "$cache" "$BUILD_DIR/CMakeFiles"
  fi
  local torch_cmake
  torch_cmake="$("$VENV_PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
  run cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_PREFIX_PATH="$torch_cmake" \
    -DQWEN2VL_PYTHON="$VENV_PYTHON"
}

build() {
  step "Build ${*:-everything}"
  run ninja -C "$BUILD_DIR" -j "$JOBS" "$@"
  note "binary: $BUILD_DIR/qwen2vl-export"
}

# Succeeds when `target` exists and is newer than every one of `sources`.
up_to_date() {
  local target="$1"
  shift
  [ -e "$target" ] || return 1
  local source
  for source in "$@"; do
    [ "$target" -nt "$source" ] || return 1
  done
}

run_demo() {
  step "Tiny random checkpoint $DEMO_CHECKPOINT"
  if up_to_date "$DEMO_CHECKPOINT/config.json" "$ROOT/tools/make_tiny_model.py"; then
    note "already made"
  else
    run "$VENV_PYTHON" "$ROOT/tools/make_tiny_model.py" "$DEMO_CHECKPOINT"
  fi

  step "Trace it to $DEMO_ARCHIVE"
  if up_to_date "$DEMO_ARCHIVE" "$DEMO_CHECKPOINT/config.json" "$ROOT/tools/trace_model.py" \
    "$ROOT/tools/onnx_friendly.py"; then
    note "already traced"
  else
    run "$VENV_PYTHON" "$ROOT/tools/trace_model.py" "$DEMO_CHECKPOINT" --output "$DEMO_ARCHIVE"
  fi

  step "Export it to $DEMO_OUTPUT"
  if up_to_date "$DEMO_OUTPUT" "$DEMO_ARCHIVE" "$BUILD_DIR/qwen2vl-export"; then
    note "already exported from this archive with this binary; delete the folder to export again"
  else
    run "$BUILD_DIR/qwen2vl-export" export --model "$DEMO_ARCHIVE" --task text-generation-with-past --force \
      "$DEMO_OUTPUT"
  fi
  note "ONNX graphs: $DEMO_OUTPUT"
}

run_tests() {
  step "Tests"
  run ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2
}

# --- main -----------------------------------------------------------------------------------
cd "$ROOT"
install_debian_packages
create_venv
if [ "$with_node" -eq 1 ]; then
  install_node_packages
fi
configure

case "$command" in
  build) build qwen2vl-export ;;
  demo)
    build qwen2vl-export
    run_demo
    ;;
  test)
    build
    run_tests
    ;;
esac
step "Done"
