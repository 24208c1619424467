#!/bin/bash
# test/format.test.sh -- the C code is formatted with the project's .clang-format.
# Fix with:  clang-format -i src/*.c include/*.h
set -euo pipefail
repo=${ANON_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
if ! command -v clang-format >/dev/null; then
	apt-get install -y -qq clang-format >/dev/null
fi
cd "$repo"
clang-format --dry-run --Werror src/*.c include/*.h
echo "C code formatted as .clang-format says"
