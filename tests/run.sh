#!/bin/sh
# Run every test binary under $B/tests and replay every fuzz corpus, then print
# the total as "N passed, N failed" (the line CI reads).
# Storage tests (test_io*, test_storage*, test_wal*, test_engine*) and the
# end-to-end server tests (test_e2e*) run once per real io backend:
# QT_TEST_IO=posix and QT_TEST_IO=uring.
B=${B:-build}
LOG=$B/test-logs
mkdir -p "$LOG"
total_pass=0
total_fail=0
failed_names=""

run_one() { # name logfile cmd...
    name=$1; log=$2; shift 2
    if timeout "${QT_TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1; then rc=0; else rc=$?; fi
    line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
        f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
    else
        p=0; f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or timed out
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$f" -ne 0 ]; then
        failed_names="$failed_names $name"
        echo "--- $name: FAILED (exit $rc), log $log"
        grep -E '^(FAIL|     )|ERROR|Sanitizer|runtime error|assertion' "$log" | head -n 40
    else
        printf '%-40s %s\n' "$name" "${line:-ok}"
    fi
}

for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    case "$n" in
    *.d|*.o) continue ;;
    test_io*|test_storage*|test_wal*|test_engine*|test_crash*|test_catalog*|test_e2e*)
        for io in posix uring; do
            QT_TEST_IO=$io run_one "$n[$io]" "$LOG/$n.$io.log" "$t"
        done ;;
    *) run_one "$n" "$LOG/$n.log" "$t" ;;
    esac
done

for r in "$B"/replay/fuzz_*; do
    [ -x "$r" ] || continue
    n=$(basename "$r")
    dir=fuzz/corpus/${n#fuzz_}
    [ -d "$dir" ] || continue
    run_one "replay:$n" "$LOG/replay.$n.log" "$r" "$dir"
done

echo
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
