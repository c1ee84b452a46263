#!/usr/bin/env bash
# After a failed `swift test`: the failing tests and their recorded issues again, at the end of the output,
# so that a log cut to its last lines (CI) still says what failed. Each line is cut to 400 characters.
log="${1:?usage: test-failures.sh LOG}"
echo "---- failed tests and their issues (from $log) ----"
grep -E '✘|recorded an issue|Expectation failed|Caught error|\[stall watchdog\]' "$log" | grep -v '✘ Test run with' | cut -c1-400 | head -60
grep -E '✘ Test run with' "$log" | tail -1
