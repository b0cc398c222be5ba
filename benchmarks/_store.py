"""Shared by the download benchmarks: a cached sample store, its S3 server, bare GETs.

- :func:`cached_store` builds a sample store once per option set under the temp directory
  (``geotessera-bench-store-<key>``) and reuses it: 9 real-size tiles take 15-20 s to build.
  The build goes to a sibling temporary directory and is renamed into place, under a file
  lock, so an interrupted build never leaves a half store behind.
- :class:`ServedStore` serves a store with ``geotessera sample serve`` in a *separate
  process* (moto holds every object in memory and needs 1-1.4 cores; in the benchmark
  worker it would share the GIL with the client and count in its RSS). It binds
  127.0.0.1, port 0, and is stopped (SIGTERM, then SIGKILL) by :meth:`ServedStore.stop`.
  :class:`ProxyProcess` runs :mod:`benchmarks.throttle_proxy` the same way. Delete
  ``geotessera-bench-store-*`` under the temp directory to force a rebuild.
- :func:`bare_get` is the floor: a parallel GET of the same URLs with one urllib3 pool,
  streaming 1 MiB reads to files, with no checksum, no temporary name, no fsync, no receipt.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

CHUNK = 1024 * 1024
TMP = Path(tempfile.gettempdir())
REPO = Path(__file__).resolve().parent.parent
MARKER_FILE = "sample_store.json"  # written last by build_store (geotessera.sample.build)


def build_options(bbox: tuple[float, float, float, float], pixel_size_m: float, year: int) -> dict[str, Any]:
    """``build_store`` options: one year, v1 only, no edge tiles."""
    return {
        "bbox": bbox,
        "years": (year,),
        "versions": ("v1",),
        "pixel_size_m": pixel_size_m,
        "edge_tiles": False,
    }


def cached_store(options: dict[str, Any]) -> Path:
    """The store built with ``options`` (built on first use, then reused between runs)."""
    key = hashlib.sha256(json.dumps(options, sort_keys=True, default=list).encode()).hexdigest()[:12]
    root = TMP / f"geotessera-bench-store-{key}"
    if (root / MARKER_FILE).exists():
        return root
    with open(TMP / f"geotessera-bench-store-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / MARKER_FILE).exists():  # built by another process while we waited
            return root
        from geotessera.sample.build import build_store

        work = Path(tempfile.mkdtemp(prefix=f"geotessera-bench-store-{key}-", dir=TMP))
        try:
            build_store(work / "store", **options)
            os.replace(work / "store", root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the benchmark worker dies without stopping it (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Child:
    """A helper process that writes one line to a ready file once serving; stopped by :meth:`stop`."""

    def __init__(
        self, cmd: list[str], *, timeout_s: float = 120.0, env: dict[str, str] | None = None
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="gt-bench-child-"))
        ready = self._dir / "ready"
        self._log = open(self._dir / "child.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [*cmd, "--ready-file", str(ready)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,  # a Ctrl-C of the benchmark reaches it through stop() only
            preexec_fn=_die_with_parent,
            env=env,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not ready.exists():
                if self.proc.poll() is not None:
                    tail = (self._dir / "child.log").read_text(errors="replace")[-500:]
                    raise RuntimeError(f"{cmd[0]} exited early: {tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[0]} did not become ready in {timeout_s} s")
                time.sleep(0.05)
            self.ready_line = ready.read_text().strip()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; remove the helper's files. Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ServedStore(_Child):
    """``geotessera sample serve ROOT`` (moto, loopback, port 0) in a child process."""

    def __init__(self, root: Path) -> None:
        exe = Path(sys.executable).with_name("geotessera")
        super().__init__([str(exe), "sample", "serve", str(root), "--port", "0"])
        self.base_url = self.ready_line
        """``http://127.0.0.1:PORT/tessera-embeddings``"""

    @property
    def port(self) -> int:
        """The server's TCP port."""
        return int(self.base_url.split("/")[2].rsplit(":", 1)[1])

    @property
    def bucket(self) -> str:
        """The bucket name (the last part of the base URL)."""
        return self.base_url.rsplit("/", 1)[1]


class ProxyProcess(_Child):
    """:mod:`benchmarks.throttle_proxy` in a child process, in front of 127.0.0.1:``upstream_port``."""

    def __init__(self, upstream_port: int, *, latency_ms: float, rate_mbps: float) -> None:
        super().__init__(
            [
                sys.executable,
                "-m",
                "benchmarks.throttle_proxy",
                "--upstream",
                f"127.0.0.1:{upstream_port}",
                "--latency-ms",
                str(latency_ms),
                "--rate-mbps",
                str(rate_mbps),
            ]
        )
        self.port = int(self.ready_line)


@dataclass(frozen=True)
class Obj:
    """One object of a plan: its URL, a local destination and its size."""

    url: str
    dest: Path
    size: int


def plan_objects(base_url: str, plan: Any, out_dir: Path) -> list[Obj]:
    """The objects of a GeoTessera download plan as URLs, re-rooted under ``out_dir``."""
    objs = []
    for t in plan.transfers:
        rel = Path(t.dest).relative_to(plan.out_dir)
        objs.append(Obj(f"{base_url}/{t.key}", out_dir / rel, int(t.expected_size or 0)))
    return objs


def bare_get(objs: list[Obj], workers: int, pool: urllib3.PoolManager | None = None) -> int:
    """Fetch every object with ``workers`` threads and one urllib3 pool; bytes written."""
    own = pool is None
    http = pool or urllib3.PoolManager(maxsize=workers, block=False)

    def one(o: Obj) -> int:
        o.dest.parent.mkdir(parents=True, exist_ok=True)
        resp = http.request("GET", o.url, preload_content=False, decode_content=False)
        try:
            if resp.status != 200:
                raise RuntimeError(f"GET {o.url}: HTTP {resp.status}")
            n = 0
            with open(o.dest, "wb") as fh:
                while data := resp.read(CHUNK, decode_content=False):
                    fh.write(data)
                    n += len(data)
        finally:
            resp.release_conn()
        if o.size and n != o.size:
            raise RuntimeError(f"GET {o.url}: {n} bytes, expected {o.size}")
        return n

    try:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return sum(ex.map(one, objs))
    finally:
        if own:
            http.clear()


def tiles_in(gt: Any, bbox: tuple[float, float, float, float], year: int) -> list[tuple[int, float, float]]:
    """The tiles of ``year`` overlapping ``bbox`` (``gt.registry.load_blocks_for_region``)."""
    return gt.registry.load_blocks_for_region(bbox, year)


@dataclass
class Session:
    """A served sample store (optionally behind the throttling proxy) and a client on it.

    ``objs`` are the npy plan's objects at the client's URL (for :func:`bare_get`);
    ``plan`` is the plan the next timed run executes; ``blobs`` is free for cases that need
    the objects' bytes in memory.
    """

    work: Path
    server: ServedStore | None = None
    proxy: ProxyProcess | None = None
    gt: Any = None
    tiles: list[tuple[int, float, float]] = field(default_factory=list)
    plan: Any = None
    objs: list[Obj] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    workers: int = 8
    runs: list[dict[str, float]] = field(default_factory=list)
    """Metrics of each timed run so far (for cases that report medians)."""

    @property
    def out(self) -> Path:
        """The output directory of the timed runs (emptied by :meth:`reset_out`)."""
        return self.work / "out"

    def reset_out(self) -> None:
        """Empty the output directory (untimed, before each run)."""
        shutil.rmtree(self.out, ignore_errors=True)

    def replan(self, **plan_options: Any) -> None:
        """Empty the output directory and plan the next run afresh (``fmt``, ``compress`` ...)."""
        self.reset_out()
        self.plan = self.gt.plan(self.tiles, self.out, **plan_options)

    def close(self) -> None:
        """Stop the client, the proxy and the server; remove the work directory."""
        try:
            if self.gt is not None:
                self.gt.close()
        finally:
            try:
                if self.proxy is not None:
                    self.proxy.stop()
            finally:
                if self.server is not None:
                    self.server.stop()
                shutil.rmtree(self.work, ignore_errors=True)


def open_session(
    options: dict[str, Any],
    bbox: tuple[float, float, float, float],
    year: int,
    n_tiles: int,
    *,
    workers: int = 8,
    prefix: str = "gt-bench-",
    proxy: dict[str, float] | None = None,
) -> Session:
    """Serve the cached store of ``options`` and load a client's registry; warm moto up.

    ``proxy`` (``latency_ms``, ``rate_mbps``) puts the throttling proxy between client and
    server. Raises if the registry does not hold ``n_tiles`` tiles in ``bbox`` for ``year``.
    """
    from geotessera.client import GeoTessera

    root = cached_store(options)
    s = Session(work=Path(tempfile.mkdtemp(prefix=prefix)), workers=workers)
    try:
        s.server = ServedStore(root)
        url = s.server.base_url
        if proxy is not None:
            s.proxy = ProxyProcess(s.server.port, **proxy)
            url = f"http://127.0.0.1:{s.proxy.port}/{s.server.bucket}"
        s.gt = GeoTessera(base_url=url, cache_dir=s.work / "cache", workers=workers)
        s.tiles = tiles_in(s.gt, bbox, year)
        if len(s.tiles) != n_tiles:
            raise RuntimeError(f"expected {n_tiles} tiles, the registry has {len(s.tiles)}")
        plan = s.gt.plan(s.tiles, s.out, fmt="npy")
        s.objs = plan_objects(url, plan, s.out)
        # moto's first responses are slow: warm it up directly (not through a proxy), untimed
        bare_get(plan_objects(s.server.base_url, plan, s.out), workers)
        s.reset_out()
    except BaseException:
        s.close()
        raise
    return s
