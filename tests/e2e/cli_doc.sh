#!/usr/bin/env bash
# cli_doc.sh BUILD_DIR SOURCE_DIR — fails when docs/cli.md differs from what scripts/cli-doc
# writes from the built program's --help texts (the docs must match the code).
set -euo pipefail
tmp=$(mktemp)
"$2/scripts/cli-doc" "$1" "$tmp"
if ! diff -u "$2/docs/cli.md" "$tmp"; then
    echo "docs/cli.md is stale: run scripts/cli-doc $1 and commit docs/cli.md" >&2
    rm -f "$tmp"
    exit 1
fi
rm -f "$tmp"
echo "docs/cli.md matches the program"
