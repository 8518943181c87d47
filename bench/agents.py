"""Exports against the number of agents (issue 18): a month's facts spread over N agents.

The store is a replayed simulated month whose answered calls are dealt out to ``N`` agents
(``A000000`` …) in ``call_id`` order, each survey and QA review following its call to the new
agent; everything else (times, queues, outcomes) is kept. So the month's KPIs are unchanged and
only the per-agent tables grow. Usage::

    .venv/bin/hotline-kpi simulate --month 2026-10 --calls-per-day 15000 --seed 3 --output m.jsonl
    .venv/bin/hotline-kpi replay m.jsonl --store base.db
    .venv/bin/python -m bench.agents base.db 2000 agents-2k.db
    /usr/bin/time -v .venv/bin/hotline-kpi export --month 2026-10 --format pdf \
        --store agents-2k.db --output out.pdf
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path


def spread_agents(base: Path, agents: int, target: Path) -> Path:
    """``base`` copied to ``target`` with its answered calls dealt out to ``agents`` agents."""
    with sqlite3.connect(base) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(base, target)
    db = sqlite3.connect(target)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "CREATE TEMP TABLE dealt AS SELECT call_id, "
        f"printf('A%06d', (ROW_NUMBER() OVER (ORDER BY call_id) - 1) % {int(agents)}) AS agent "
        "FROM calls WHERE agent_id IS NOT NULL"
    )
    db.execute("CREATE UNIQUE INDEX temp.dealt_call ON dealt (call_id)")
    db.execute(
        "UPDATE calls SET agent_id = (SELECT agent FROM dealt d WHERE d.call_id = calls.call_id) "
        "WHERE agent_id IS NOT NULL"
    )
    for table in ("surveys", "reviews"):
        db.execute(
            f"UPDATE {table} SET agent_id = (SELECT agent FROM dealt d "
            f"WHERE d.call_id = {table}.call_id) "
            f"WHERE agent_id IS NOT NULL AND call_id IN (SELECT call_id FROM dealt)"
        )
    db.commit()
    db.close()
    return target


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m bench.agents BASE.db AGENTS TARGET.db")
    spread_agents(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
