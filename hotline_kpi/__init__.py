"""hotline-kpi."""
