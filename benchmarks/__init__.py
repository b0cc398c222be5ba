"""Benchmarks for geotessera: ``make bench`` or ``python -m benchmarks [names...]``.

Not collected by pytest. Each ``bench_*.py`` module defines ``cases() -> list[Case]``; one case
is the baseline (the floor, measured in the same run). Every case runs in a fresh subprocess, so
its peak RSS is its own; the runner prints a table (median time, ratio to the baseline, peak RSS)
and writes JSON under ``benchmarks/results/``. See :mod:`benchmarks.harness`.
"""
