#!/bin/sh
# Run each libFuzzer target for FUZZ_SECONDS (0: just list them).  New inputs
# go to build/fuzz/corpus/<target>; crashes are written to fuzz/corpus/<target>/
# so that `make test` replays them from then on.
FUZZ_B=${FUZZ_B:-build/fuzz}
S=${FUZZ_SECONDS:-0}
for t in "$FUZZ_B"/fuzz_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t"); name=${n#fuzz_}
    if [ "$S" -le 0 ]; then echo "built $t"; continue; fi
    work=$FUZZ_B/corpus/$name
    mkdir -p "$work" "fuzz/corpus/$name"
    echo "== $n for ${S}s"
    "$t" -max_total_time="$S" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/corpus/$name/crash-" "$work" "fuzz/corpus/$name" 2>&1 |
        grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==.*ERROR|SUMMARY)' || true
done
