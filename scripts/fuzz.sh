#!/usr/bin/env bash
# The libFuzzer targets of test/fuzz (issue 22), each for a bounded time:
#
#   bash scripts/fuzz.sh [TARGET...]        (TARGET: e.g. broker_url; default all)
#   OUTBOX_FUZZ_SECONDS=60 bash scripts/fuzz.sh   longer runs
#
# Builds them with clang-14 (-fsanitize=fuzzer,address,undefined; src/core,
# src/http and src/sink with the same sanitizers) in build/fuzz, then runs
# each from its seed corpus (test/fuzz/corpus/TARGET, read only; what a run
# adds goes to build/fuzz/corpus/TARGET and is kept for the next run). A
# crash, a sanitizer report, a broken property or a hang (10 s on one
# input) fails the target; the input that did it is in build/fuzz/artifacts.
# Prints "ok - TARGET ..." or "not ok - TARGET ..." per target (scripts/test.sh
# counts them). Parsers run OUTBOX_FUZZ_SECONDS (10), the sinks' reply
# targets, which go through a socket per input, twice that.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build/fuzz
seconds=${OUTBOX_FUZZ_SECONDS:-10}
compiler=$(command -v clang++-14 || command -v clang++) || { echo "clang++ is not installed (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOX_FUZZ=ON \
    >"$build.log" 2>&1 && nice cmake --build "$build" --target fuzz -j"$(nproc)" >>"$build.log" 2>&1 ||
    { tail -30 "$build.log"; echo "not ok - the fuzz targets did not build"; exit 1; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for source in "$root"/test/fuzz/*_fuzz.cpp; do
        name=$(basename "$source" .cpp)
        targets+=("${name%_fuzz}")
    done
fi
mkdir -p "$build/artifacts"
export LSAN_OPTIONS="suppressions=$root/test/sanitizers/lsan.supp:print_suppressions=0"
rc=0
for target in "${targets[@]}"; do
    binary=$build/${target}_fuzz
    seeds=$root/test/fuzz/corpus/$target
    [ -x "$binary" ] && [ -d "$seeds" ] || { echo "not ok - $target: no binary or no corpus at $seeds"; rc=1; continue; }
    time=$seconds leaks=1
    # The client libraries keep threads and global state across inputs, so
    # libFuzzer's leak check would scan memory after nearly every input (10
    # inputs a second instead of 200); the sinks' own leaks are the ASan unit
    # and sink tests' business.
    [[ "$target" == *_reply ]] && time=$((seconds * 2)) leaks=0
    mkdir -p "$build/corpus/$target"
    log=$build/$target.log
    "$binary" -max_total_time="$time" -max_len=4096 -timeout=10 -detect_leaks="$leaks" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$target-" "$build/corpus/$target" "$seeds" >"$log" 2>&1
    status=$?
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
    if [ "$status" = 0 ]; then
        echo "ok - $target: ${runs:-?} inputs in $time s, no finding"
    else
        echo "not ok - $target (exit $status): $(grep -m1 -E 'property violated|ERROR: |SUMMARY|terminate called|what\(\)' "$log")"
        grep -m1 -E 'Test unit written to' "$log"
        grep -E '^    #[0-9]+ ' "$log" | grep -v -E 'libFuzzer|fuzzer::|libc\.so|sanitizer' | head -8
        rc=1
    fi
done
exit "$rc"
