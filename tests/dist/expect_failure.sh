#!/usr/bin/env bash
# expect_failure.sh NEEDLE COMMAND... — passes when COMMAND exits non-zero and its output names NEEDLE.
needle=$1
shift
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ $rc -eq 0 ]; then
    echo "expect_failure: command succeeded, expected a failure" >&2
    exit 1
fi
if ! printf '%s' "$out" | grep -q -- "$needle"; then
    echo "expect_failure: exit $rc but the output does not mention \"$needle\"" >&2
    exit 1
fi
echo "expect_failure: exit $rc, output names \"$needle\" (as expected)"
