"""`manage.py bench`: measured figures for ingest, nightly decisions, mapping and the dashboard.

Each measurement runs in a child process of its own (``python -m conversion.bench.child``) so its
peak RSS is its own; the command only orchestrates, prints the table and writes BENCHMARKS.md.
"""
