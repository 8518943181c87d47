"""Benchmarks of hotline-kpi (issue 9): measurements, not timed tests. Entry point: bench/run.py."""
