#!/usr/bin/env bash
# Build the libFuzzer target for the config.json parser (config_fuzzer.cpp and
# src/config) with clang++ and run it for a bounded time. The script compiles
# the parser's sources a second time, so the main build keeps its compiler.
#
# Usage: tests/fuzz/run_config_fuzzer.sh [BUILD_DIR]
#
#   BUILD_DIR  folder for the fuzzer binary, its log and the inputs that fail
#              (findings/); default $FUZZ_BUILD_DIR, else build/fuzz
#
# Environment:
#   FUZZ_SECONDS   total fuzzing time in seconds (default 30)
#   FUZZ_CXX       compiler with libFuzzer support (default clang++)
#   FUZZ_CXXFLAGS  extra compiler flags, appended after the default ones
#
# The seed corpus tests/fuzz/corpus/config is copied to a temporary folder,
# so the fuzzer never writes into the source tree.
#
# Exit status: 0 when the run found nothing, 1 on a finding (crash, sanitizer
# report, timeout, leak, out-of-memory) or a failed build, 77 when clang++ or
# the libFuzzer runtime is missing (ctest reports the test as skipped).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
BUILD_DIR="${1:-${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}}"
SECONDS_TO_RUN="${FUZZ_SECONDS:-30}"
CXX_FUZZ="${FUZZ_CXX:-clang++}"
SEED_CORPUS="$SCRIPT_DIR/corpus/config"
DICTIONARY="$SCRIPT_DIR/json.dict"

FUZZER="$BUILD_DIR/config_fuzzer"
FINDINGS="$BUILD_DIR/findings"
LOG="$BUILD_DIR/config_fuzzer.log"

# Debian 12 and 13 name the compiler-rt package after the clang version
# (libclang-rt-14-dev, libclang-rt-19-dev). The unversioned packages pull in
# the default version on both.
INSTALL_HINT="install the Debian packages clang and libclang-rt-dev (apt-get install clang libclang-rt-dev, or run tools/setup.sh)"
EXIT_SKIP=77

SANITIZER_FLAGS=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
CXXFLAGS_FUZZ=(-std=c++17 -g -O1 "${SANITIZER_FLAGS[@]}"
               -I"$ROOT/include" -I"$ROOT/src/config"
               -DSPDLOG_FMT_EXTERNAL -DFMT_HEADER_ONLY)
# Word splitting is intended: FUZZ_CXXFLAGS is a list of flags.
# shellcheck disable=SC2206
EXTRA_FLAGS=(${FUZZ_CXXFLAGS:-})

log() { printf 'run_config_fuzzer.sh: %s\n' "$*"; }
fail() {
  printf 'run_config_fuzzer.sh: error: %s\n' "$*" >&2
  exit 1
}
skip() {
  printf 'run_config_fuzzer.sh: SKIPPED: %s\n' "$*" >&2
  exit "$EXIT_SKIP"
}

if ! [[ "$SECONDS_TO_RUN" =~ ^[1-9][0-9]*$ ]]; then
  fail "FUZZ_SECONDS is '$SECONDS_TO_RUN'; set it to a whole number of seconds such as 30"
fi

# Check that the compiler exists and can link a fuzz target with the sanitizer
# runtimes, so that a missing package gives one clear message.
check_toolchain() {
  if ! command -v "$CXX_FUZZ" >/dev/null 2>&1; then
    skip "$CXX_FUZZ not found; $INSTALL_HINT"
  fi
  local probe_dir="$BUILD_DIR/toolchain-probe"
  mkdir -p "$probe_dir"
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe_dir/probe.cpp"
  if ! "$CXX_FUZZ" "${SANITIZER_FLAGS[@]}" "$probe_dir/probe.cpp" -o "$probe_dir/probe" >"$probe_dir/output.txt" 2>&1; then
    cat "$probe_dir/output.txt" >&2
    skip "$CXX_FUZZ cannot link a target with -fsanitize=fuzzer,address,undefined (output above), so the libFuzzer or sanitizer runtime is missing; $INSTALL_HINT"
  fi
}

# Build the fuzzer unless it is newer than every source and header it uses
# and was built with the same command.
build_fuzzer() {
  local sources=("$SCRIPT_DIR/config_fuzzer.cpp" "$ROOT"/src/config/*.cpp)
  local command=("$CXX_FUZZ" "${CXXFLAGS_FUZZ[@]}" "${EXTRA_FLAGS[@]}" "${sources[@]}" -o "$FUZZER")
  local stamp="$FUZZER.command"
  if [ -x "$FUZZER" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${command[*]}" ] &&
    [ -z "$(find "${sources[@]}" "$ROOT/src/config" "$ROOT/include/qwen2vl" "${BASH_SOURCE[0]}" -newer "$FUZZER" -print -quit)" ]; then
    log "config_fuzzer is up to date: $FUZZER"
    return
  fi
  log "building $FUZZER"
  printf '    $ %s\n' "${command[*]}"
  rm -f "$stamp"
  "${command[@]}" || fail "building config_fuzzer failed (compiler output above)"
  printf '%s\n' "${command[*]}" >"$stamp"
}

# Print the lines of the log that describe a finding, without the progress
# lines ("#1234 NEW cov: ...") that libFuzzer prints for every new input.
print_report() {
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)' "$LOG" || true
}

run_fuzzer() {
  mkdir -p "$FINDINGS"
  local corpus
  corpus="$(mktemp -d "${TMPDIR:-/tmp}/config_fuzzer_corpus.XXXXXX")"
  # shellcheck disable=SC2064  # expand $corpus now: it is local to this function
  trap "rm -rf '$corpus'" EXIT
  cp "$SEED_CORPUS"/* "$corpus"/

  log "fuzzing for $SECONDS_TO_RUN s; log: $LOG; findings go to $FINDINGS/"
  local status=0
  # halt_on_error makes UBSan stop at the first report, which libFuzzer then
  # treats as a crash. The caller's own sanitizer options come first.
  UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1" \
    "$FUZZER" "$corpus" \
    -dict="$DICTIONARY" \
    -max_total_time="$SECONDS_TO_RUN" \
    -timeout=5 \
    -rss_limit_mb=2048 \
    -artifact_prefix="$FINDINGS/" \
    -print_final_stats=1 \
    >"$LOG" 2>&1 || status=$?

  if [ "$status" -ne 0 ]; then
    print_report
    local artifacts
    artifacts="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$LOG")"
    if [ -n "$artifacts" ]; then
      local artifact
      while IFS= read -r artifact; do
        log "FAILED: crashing input: $artifact"
        log "reproduce with: $FUZZER $artifact"
      done <<<"$artifacts"
    fi
    # libFuzzer's own exit codes include 77, which ctest would count as a
    # skip, so every finding exits with 1.
    fail "config_fuzzer exited with status $status; see the report above and the full log $LOG"
  fi

  grep -E '^(INFO: Seed|INFO: Loaded|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::)' "$LOG" || true
  log "no findings in $SECONDS_TO_RUN s"
}

mkdir -p "$BUILD_DIR"
check_toolchain
build_fuzzer
run_fuzzer
