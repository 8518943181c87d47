#!/usr/bin/env bash
# Replay one file with each optimisation's commit, and json.loads it, in one run.
#   bench/before_after.sh FILE [CLONE]
# CLONE is a second checkout of this repository with its own venv (scripts/setup.sh), whose
# HEAD is moved to each commit in turn; this checkout is not touched.
set -euo pipefail
file=$(realpath "$1")
clone=${2:-/tmp/hotline-kpi-before-after}
here=$(cd "$(dirname "$0")/.." && pwd)
[ -d "$clone" ] || { git clone -q "$here" "$clone" && "$clone/scripts/setup.sh"; }
cd "$clone"
git fetch -q "$here" HEAD
for rev in 125d476 a948292 32691d9 969a70d; do
  git checkout -q "$rev"
  rm -f /tmp/ba.db*
  start=$(date +%s.%N)
  .venv/bin/hotline-kpi replay "$file" --store /tmp/ba.db >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$rev $(python3 -c "print(f'{$(wc -l < $file) / ($end - $start):,.0f} lines/s (wall, incl. ~0.5 s start-up)')")"
done
python3 - "$file" <<'PY'
import json, sys, time
lines = open(sys.argv[1], "rb").read().splitlines()
t = time.perf_counter()
for line in lines:
    try: json.loads(line)
    except ValueError: pass
print(f"json.loads {len(lines) / (time.perf_counter() - t):,.0f} lines/s")
PY
