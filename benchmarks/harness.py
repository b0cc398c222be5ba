"""A tiny benchmark framework: cases, a per-case subprocess worker, a runner and a table.

A benchmark module ``benchmarks/bench_NAME.py`` defines::

    def cases() -> list[Case]: ...

Exactly one case has ``baseline=True``; every case's ratio is its median time over the
baseline's. A module may also define ``summary(results: dict[str, CaseResult]) -> list[str]``:
lines printed under the table (e.g. a goal's ratio between two cases other than the baseline).
Cases are built in the parent (to list them) and again in a fresh worker subprocess, so
building a case must be cheap: heavy work goes into ``setup``.

Timing: per repeat, ``reset(state)`` (untimed, e.g. empty the output directory), then
``run(state)`` under ``time.perf_counter``. ``run`` may return a dict of numbers (e.g.
``{"bytes": n}``); ``bytes`` gives a throughput column.

Memory: before each timed call the worker resets the kernel's peak-RSS counter
(``/proc/self/clear_refs`` = 5, Linux) and reads ``VmHWM`` after it, so "peak RSS" is the peak
during the measured call alone (process total, including what setup holds), and "+RSS" is that
peak minus the RSS just before the call. Where the reset is not allowed, the whole-process
``ru_maxrss`` is reported instead and the JSON says ``"rss_scope": "process"``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
RESULTS_DIR = PACKAGE_DIR / "results"


def _no_setup() -> Any:
    return None


def _no_op(state: Any) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """One measured thing.

    ``setup()`` runs once per worker (untimed) and returns a state passed to the other hooks;
    ``reset(state)`` runs untimed before every repeat; ``run(state)`` is timed and may return
    a dict of numeric metrics; ``teardown(state)`` runs once at the end.
    """

    name: str
    run: Callable[[Any], dict[str, float] | None]
    setup: Callable[[], Any] = _no_setup
    reset: Callable[[Any], None] = _no_op
    teardown: Callable[[Any], None] = _no_op
    baseline: bool = False
    repeats: int = 3
    description: str = ""


@dataclass
class CaseResult:
    """Measurements of one case (seconds, MiB)."""

    name: str
    baseline: bool
    times_s: list[float]
    peak_rss_mib: float
    rss_increase_mib: float
    rss_scope: str
    metrics: dict[str, float] = field(default_factory=dict)
    description: str = ""
    error: str | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s) if self.times_s else float("nan")


# -- worker side --------------------------------------------------------------------------------


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _find_case(module_name: str, case_name: str) -> Case:
    module = importlib.import_module(f"benchmarks.{module_name}")
    for case in module.cases():
        if case.name == case_name:
            return case
    raise SystemExit(f"no case {case_name!r} in benchmarks.{module_name}")


def run_worker(module_name: str, case_name: str, repeats: int | None, out_path: Path) -> None:
    """Run one case in this (fresh) process and write its :class:`CaseResult` as JSON."""
    case = _find_case(module_name, case_name)
    n = repeats if repeats is not None else case.repeats
    state = case.setup()
    times: list[float] = []
    peaks: list[int] = []
    increases: list[int] = []
    metrics: dict[str, float] = {}
    scope = "call"
    try:
        for _ in range(n):
            case.reset(state)
            exact = _reset_peak_rss()
            before = _status_kib("VmRSS") or 0
            t0 = time.perf_counter()
            got = case.run(state)
            times.append(time.perf_counter() - t0)
            hwm = _status_kib("VmHWM") if exact else None
            if hwm is None:
                scope = "process"
                hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peaks.append(hwm)
            increases.append(max(0, hwm - before))
            if got:
                metrics = {k: float(v) for k, v in got.items()}
    finally:
        case.teardown(state)
    result = CaseResult(
        name=case.name,
        baseline=case.baseline,
        times_s=times,
        peak_rss_mib=max(peaks) / 1024,
        rss_increase_mib=max(increases) / 1024,
        rss_scope=scope,
        metrics=metrics,
        description=case.description,
    )
    out_path.write_text(json.dumps(result.__dict__))


# -- runner side --------------------------------------------------------------------------------


def discover() -> list[str]:
    """Module names (``bench_*``) of the benchmarks package."""
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)]) if m.name.startswith("bench_"))


def _resolve(names: Sequence[str]) -> list[str]:
    available = discover()
    if not names:
        return available
    chosen = []
    for name in names:
        module = name if name.startswith("bench_") else f"bench_{name}"
        module = module.removesuffix(".py")
        if module not in available:
            raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(available)}")
        chosen.append(module)
    return chosen


def _run_case_subprocess(module_name: str, case: Case, repeats: int | None) -> CaseResult:
    with tempfile.TemporaryDirectory(prefix="gt-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks", "--worker", module_name, case.name, "--out", str(out)]
        if repeats is not None:
            cmd += ["--repeats", str(repeats)]
        proc = subprocess.run(cmd, cwd=PACKAGE_DIR.parent, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return CaseResult(case.name, case.baseline, [], 0.0, 0.0, "none", error=" | ".join(tail))
        data = json.loads(out.read_text())
        return CaseResult(**data)


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x != x else f"{x:.{digits}f}"  # NaN -> "-"


def format_table(title: str, results: list[CaseResult]) -> str:
    """A plain-text table: median and min time, ratio to baseline, throughput, peak RSS."""
    base = next((r for r in results if r.baseline and not r.error), None)
    rows = [("case", "median s", "min s", "ratio", "MB/s", "peak RSS MiB", "+RSS MiB", "runs")]
    for r in results:
        if r.error:
            rows.append((r.name, "ERROR", r.error[:60], "", "", "", "", ""))
            continue
        ratio = r.median_s / base.median_s if base else float("nan")
        nbytes = r.metrics.get("bytes")
        rate = nbytes / r.median_s / 1e6 if nbytes else float("nan")
        rows.append(
            (
                r.name + (" (baseline)" if r.baseline else ""),
                _fmt(r.median_s),
                _fmt(min(r.times_s)),
                _fmt(ratio, 2) + "x",
                _fmt(rate, 0),
                _fmt(r.peak_rss_mib, 0),
                _fmt(r.rss_increase_mib, 0),
                str(len(r.times_s)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [title]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PACKAGE_DIR.parent, capture_output=True, text=True
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def write_json(module_name: str, results: list[CaseResult], extra: dict[str, Any]) -> Path:
    """Write the results of one benchmark to ``benchmarks/results/`` and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{module_name.removeprefix('bench_')}-{stamp}.json"
    base = next((r for r in results if r.baseline and not r.error), None)
    doc = {
        "benchmark": module_name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **extra,
        "cases": [
            {
                **r.__dict__,
                "median_s": r.median_s,
                "ratio_to_baseline": (r.median_s / base.median_s) if base and not r.error else None,
            }
            for r in results
        ],
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks [names...] [--repeats N] [--list]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (e.g. sample_build); default: all")
    parser.add_argument("--repeats", type=int, default=None, help="override every case's repeat count")
    parser.add_argument("--list", action="store_true", help="list benchmarks and their cases")
    parser.add_argument("--worker", nargs=2, metavar=("MODULE", "CASE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        run_worker(args.worker[0], args.worker[1], args.repeats, args.out)
        return 0

    failed = False
    for module_name in _resolve(args.names):
        module = importlib.import_module(f"benchmarks.{module_name}")
        cases: list[Case] = module.cases()
        if sum(c.baseline for c in cases) != 1:
            raise SystemExit(f"benchmarks.{module_name} must define exactly one baseline case")
        if args.list:
            print(f"{module_name.removeprefix('bench_')}: " + ", ".join(c.name for c in cases))
            continue
        doc = (module.__doc__ or "").strip().splitlines()
        print(f"== {module_name.removeprefix('bench_')}: {doc[0] if doc else ''}", flush=True)
        ordered = sorted(cases, key=lambda c: not c.baseline)  # baseline first
        results = []
        for case in ordered:
            print(f"   running {case.name} ...", flush=True)
            results.append(_run_case_subprocess(module_name, case, args.repeats))
        failed |= any(r.error for r in results)
        print(format_table("", results).lstrip("\n"))
        summary = getattr(module, "summary", None)
        if summary is not None:
            for line in summary({r.name: r for r in results if not r.error}):
                print(f"   {line}")
        extra = getattr(module, "PARAMETERS", {})
        path = write_json(module_name, results, {"parameters": extra})
        print(f"   results: {path.relative_to(PACKAGE_DIR.parent)}\n", flush=True)
    return 1 if failed else 0
