#!/usr/bin/env bash
# Lay out the package of one commit for side-by-side runs with this checkout's venv:
#   bench/at_commit.sh REV DIR   ->   PYTHONPATH=DIR .venv/bin/python -m hotline_kpi.cli ...
# (git archive of the commit, its top-level folders mapped as pyproject.toml's package-dir does.)
set -euo pipefail
rev=$1
out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out" && mkdir -p "$out/src"
git -C "$here" archive "$rev" | tar -x -C "$out/src"
mkdir -p "$out/hotline_kpi"
cp -r "$out/src/hotline_kpi/." "$out/hotline_kpi/"
for part in ingest metrics alerts dashboards reports; do
  [ -d "$out/src/$part" ] && cp -r "$out/src/$part" "$out/hotline_kpi/$part"
done
rm -rf "$out/src"
echo "$out"
