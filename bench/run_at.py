"""Run ``hotline_kpi.cli`` from a package laid out by ``bench/at_commit.sh`` (first argument),
not from the editable install of this checkout: ``run_at.py DIR replay FILE --store S``."""

import sys

root = sys.argv.pop(1)
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder)]
sys.path.insert(0, root)

from hotline_kpi.cli import main  # noqa: E402

raise SystemExit(main(sys.argv[1:]))
