#!/usr/bin/env bash
# mypy cannot follow setuptools' package-dir mapping (ingest/ -> hotline_kpi.ingest, ...), so
# type-check a throwaway tree of symlinks laid out as the installed package is.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=.typecheck/hotline_kpi
rm -rf .typecheck && mkdir -p "$tree"
for file in hotline_kpi/*.py; do ln -s "../../$file" "$tree/$(basename "$file")"; done
for package in hotline_kpi/*/; do
    package=${package%/}
    [ -f "$package/__init__.py" ] && ln -s "../../$package" "$tree/$(basename "$package")"
done
for room in ingest metrics alerts dashboards reports; do
    [ -d "$room" ] && ln -s "../../$room" "$tree/$room"
done
exec "${VENV:-.venv}/bin/mypy" "$tree" "$@"
