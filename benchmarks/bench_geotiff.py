"""GeoTIFF export of one real-size tile: size and speed of every layout, against the published client.

Tiles (1141 x 731 x 128 int8 + float32 scales): ``grid_0.05_52.05`` of the 3 x 3 store of
``bench_download`` (cached under the temp directory, memory-mapped as the download pipeline
reads it), and a tile of independent realistic data (``benchmarks/_realistic.py``: smooth
random fields with per-pixel scales, quantised as Tessera does), since the sample store's
values may compress differently from real embeddings; and the sample tile as a coastal
tile, its western half water (NaN scales: nodata, as published tiles mark water).

Timed cases (sample tile unless named realistic):

- baseline: the published client's writer and layout: the tile dequantised whole
  (pixel-major float32), written band by band with ``compress="lzw"``, tiled 256 x 256,
  pixel-interleaved (GDAL's default), no predictor, no nodata;
- today's defaults before this change: ``write_embedding_geotiff`` band-interleaved with the
  floating-point predictor (3), lzw;
- ``write_embedding_geotiff`` with each ``--compress`` (lzw is the default: pixel-interleaved,
  no predictor, tiles encoded by ``geotessera.export._lzw`` in a thread per core);
- the default layout again with GDAL's (libtiff's) LZW encoder, ours switched off.

Each case reports the file's bytes and CPU seconds (GDAL's threads included). Layout matrix
cases write the tile once per interleave (band/pixel) x predictor (1 none, 2 horizontal on the
32-bit integer view, 3 floating point) x compression (lzw, deflate 1/6, zstd 1/9) with
``NUM_THREADS=ALL_CPUS`` (pixel/1/lzw goes through our encoder), and the main layouts again on
one thread; ``summary()`` prints them as
tables with size and time ratios (size against the published layout, time against today's
defaults). The machine is shared: CPU seconds are steadier than wall times.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._store import build_options, cached_store
from benchmarks.harness import Case, CaseResult

STORE_BBOX = (0.0, 52.0, 0.3, 52.3)  # the 3 x 3 store of bench_download (cached)
TILE = (0.05, 52.05)
YEAR = 2024
OPTIONS = build_options(STORE_BBOX, 10.0, YEAR)
PARAMETERS = {"tile": list(TILE), "year": YEAR, "pixel_size_m": 10.0, "shape": [1141, 731, 128]}
TAGS = {"TESSERA_DATASET_VERSION": "1.0", "TESSERA_YEAR": str(YEAR), "TESSERA_DESCRIPTION": "benchmark"}

PUBLISHED = "published client (pixel, lzw, no predictor)"
TODAY = "today's defaults (band, predictor 3, lzw)"
GDAL_LZW = "ours lzw, GDAL's encoder"
COMPRESSIONS = ("lzw", "deflate", "deflate:1", "zstd", "zstd:9", "none")
MATRIX_CODECS = ("lzw", "deflate:1", "deflate:6", "zstd:1", "zstd:9")
ONE_THREAD = (("pixel", 1, "lzw"), ("band", 3, "lzw"), ("pixel", 1, "deflate:6"), ("band", 3, "zstd:1"))


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads, GDAL's compressors included
    return r.ru_utime + r.ru_stime


@dataclass
class _State:
    work: Path
    quantized: Any
    scales: Any
    grid: Any

    @property
    def out(self) -> Path:
        return self.work / "out.tif"


def _setup(kind: str) -> _State:
    from geotessera.datasets import DatasetId
    from geotessera.grid import Cell
    from geotessera.layouts import S3_LAYOUT
    from geotessera.tiles import load_tile_arrays, read_landmask_grid

    root = cached_store(OPTIONS)
    ds, cell = DatasetId(), Cell.from_centre(*TILE)
    grid = read_landmask_grid(root / S3_LAYOUT.landmask_key(ds, cell))
    if kind == "realistic":
        from benchmarks._realistic import realistic_tile

        q, s = realistic_tile(*grid.shape)
    elif kind == "coastal":  # the sample tile with its western half water (NaN scales: nodata)
        arrays = load_tile_arrays(
            root / S3_LAYOUT.embedding_key(ds, YEAR, cell), root / S3_LAYOUT.scales_key(ds, YEAR, cell)
        )
        q, s = np.array(arrays.quantized), np.array(arrays.scales)
        s[:, : s.shape[1] // 2] = np.nan
    else:
        arrays = load_tile_arrays(
            root / S3_LAYOUT.embedding_key(ds, YEAR, cell), root / S3_LAYOUT.scales_key(ds, YEAR, cell)
        )
        q, s = arrays.quantized, arrays.scales
        np.add.reduce(q, axis=None, dtype=np.int64)  # fault the mapped pages in
    if q.shape[0] < 1000:
        raise RuntimeError(f"expected a real-size tile, got {q.shape}")
    return _State(Path(tempfile.mkdtemp(prefix="gt-bench-geotiff-")), q, s, grid)


def _reset(state: _State) -> None:
    state.out.unlink(missing_ok=True)


def _teardown(state: _State) -> None:
    shutil.rmtree(state.work, ignore_errors=True)


def _run_published(state: _State) -> dict[str, float]:
    """As the published client writes a tile: whole-tile dequantise, then one band at a time."""
    import rasterio

    c0 = _cpu_s()
    emb = state.quantized.astype(np.float32) * state.scales[..., None]
    h, w, nb = emb.shape
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": nb,
        "dtype": "float32",
        "crs": state.grid.crs.to_wkt(),
        "transform": state.grid.transform,
        "compress": "lzw",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(state.out, "w", **profile) as dst:
        for i in range(nb):
            dst.write(emb[:, :, i], i + 1)
        for i in range(nb):
            dst.set_band_description(i + 1, f"Tessera_Band_{i}")
        dst.update_tags(**TAGS)
    return {"bytes": state.out.stat().st_size, "cpu_s": _cpu_s() - c0}


def _write(state: _State, compress: str, **layout: Any) -> dict[str, float]:
    from geotessera.export import write_embedding_geotiff

    c0, t0 = _cpu_s(), time.perf_counter()
    write_embedding_geotiff(
        state.out, state.quantized, state.scales, state.grid, compress=compress, tags=TAGS, **layout
    )
    return {"bytes": state.out.stat().st_size, "cpu_s": _cpu_s() - c0, "wall_s": time.perf_counter() - t0}


def _write_gdal_lzw(state: _State) -> dict[str, float]:
    """The default layout with GDAL's LZW encoder (ours switched off): the encoder's own gain."""
    from geotessera.export import lzw_tiles

    saved, lzw_tiles._encoder = lzw_tiles._encoder, None
    try:
        return _write(state, "lzw")
    finally:
        lzw_tiles._encoder = saved


def _run_matrix(state: _State) -> dict[str, float]:
    """Every layout once; metrics ``{interleave}|{predictor}|{codec}|{threads}|bytes`` (and cpu_s, wall_s)."""
    runs = [(il, p, c, "all") for il in ("band", "pixel") for p in (1, 2, 3) for c in MATRIX_CODECS]
    runs += [(il, p, c, "1") for il, p, c in ONE_THREAD]
    out: dict[str, float] = {}
    for il, p, c, threads in runs:
        state.out.unlink(missing_ok=True)
        got = _write(state, c, interleave=il, predictor=p, threads="ALL_CPUS" if threads == "all" else 1)
        for k, v in got.items():
            out[f"{il}|{p}|{c}|{threads}|{k}"] = v
    state.out.unlink(missing_ok=True)
    return out


def _case(
    name: str, kind: str, run: Any, repeats: int = 3, baseline: bool = False, description: str = ""
) -> Case:
    return Case(
        name=name,
        baseline=baseline,
        setup=lambda: _setup(kind),
        reset=_reset,
        run=run,
        teardown=_teardown,
        repeats=repeats,
        description=description,
    )


def cases() -> list[Case]:
    """Published layout (baseline), today's defaults, each compression, both tiles, the layout matrix."""
    today = {"interleave": "band", "predictor": 3}
    out = [
        _case(PUBLISHED, "sample", _run_published, baseline=True, description="whole tile, band by band"),
        _case(TODAY, "sample", lambda s: _write(s, "lzw", **today)),
    ]
    out += [_case(f"ours {c}", "sample", lambda s, c=c: _write(s, c)) for c in COMPRESSIONS]
    out += [
        _case(GDAL_LZW, "sample", _write_gdal_lzw, description="default layout, libtiff's encoder"),
        _case(f"{PUBLISHED}, realistic", "realistic", _run_published),
        _case(f"{TODAY}, realistic", "realistic", lambda s: _write(s, "lzw", **today)),
        _case("ours lzw, realistic", "realistic", lambda s: _write(s, "lzw")),
        _case(f"{TODAY}, coastal", "coastal", lambda s: _write(s, "lzw", **today)),
        _case("ours lzw, coastal", "coastal", lambda s: _write(s, "lzw")),
        _case(f"{GDAL_LZW}, coastal", "coastal", _write_gdal_lzw),
        _case("ours deflate, realistic", "realistic", lambda s: _write(s, "deflate")),
        _case("ours zstd, realistic", "realistic", lambda s: _write(s, "zstd")),
        _case("layout matrix, sample", "sample", _run_matrix, repeats=1, description="see summary"),
        _case("layout matrix, realistic", "realistic", _run_matrix, repeats=1, description="see summary"),
    ]
    return out


def _ratio_lines(results: dict[str, CaseResult], suffix: str) -> list[str]:
    pub, today = results.get(PUBLISHED + suffix), results.get(TODAY + suffix)
    if pub is None or today is None:
        return []
    lines = []
    for name in [TODAY, GDAL_LZW, *(f"ours {c}" for c in COMPRESSIONS)]:
        r = results.get(name + suffix)
        if r is None:
            continue
        size = r.metrics["bytes"] / pub.metrics["bytes"]
        lines.append(
            f"{name + suffix}: {r.metrics['bytes'] / 1e6:.1f} MB, size ratio {size:.3f} vs published; "
            f"time ratio {r.median_s / today.median_s:.2f} vs today's defaults "
            f"(CPU {r.metrics['cpu_s'] / today.metrics['cpu_s']:.2f}); {r.median_s:.2f} s"
        )
    return lines


def _row(cells: tuple[str, ...]) -> str:
    widths = (10, 4, 9, 3, 7, 6, 7, 5, 6)
    return "  " + " ".join(
        c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _matrix_lines(r: CaseResult, title: str, pub_bytes: float | None) -> list[str]:
    m = r.metrics
    ref = m.get("band|3|lzw|all|wall_s")
    lines = [f"{title} (size ratio vs the published layout; time ratio vs band/pred 3/lzw, both threads):"]
    lines.append(_row(("interleave", "pred", "codec", "thr", "MB", "size", "wall s", "time", "cpu s")))
    keys = sorted({k.rsplit("|", 1)[0] for k in m}, key=lambda k: (k.split("|")[2], k.split("|")[0], k))
    for key in keys:
        il, pred, codec, thr = key.split("|")
        nbytes, wall, cpu = m[f"{key}|bytes"], m[f"{key}|wall_s"], m[f"{key}|cpu_s"]
        size = f"{nbytes / pub_bytes:.3f}" if pub_bytes else "-"
        time_ratio = f"{wall / ref:.2f}" if ref else "-"
        lines.append(
            _row((il, pred, codec, thr, f"{nbytes / 1e6:.1f}", size, f"{wall:.2f}", time_ratio, f"{cpu:.2f}"))
        )
    return lines


def summary(results: dict[str, CaseResult]) -> list[str]:
    """Goals (default lzw: size <= 1.0 x published, time <= 0.5 x today's), ratios, matrices."""
    lines = _ratio_lines(results, "") + _ratio_lines(results, ", realistic")
    ours, pub, today = results.get("ours lzw"), results.get(PUBLISHED), results.get(TODAY)
    if ours and pub and today:
        size = ours.metrics["bytes"] / pub.metrics["bytes"]
        lines.append(
            f"GOALS default (lzw): size ratio {size:.3f} (goal <= 1.0), "
            f"time ratio {ours.median_s / today.median_s:.2f} (goal <= 0.5)"
        )
    coast, coast_today = results.get("ours lzw, coastal"), results.get(f"{TODAY}, coastal")
    coast_gdal = results.get(f"{GDAL_LZW}, coastal")
    if coast and coast_today:
        lines.append(
            f"coastal tile (western half NaN): ours lzw {coast.median_s:.2f} s, "
            f"{coast.metrics['bytes'] / 1e6:.1f} MB; today's defaults {coast_today.median_s:.2f} s: "
            f"time ratio {coast.median_s / coast_today.median_s:.2f}"
            + (f"; GDAL's encoder {coast_gdal.median_s:.2f} s" if coast_gdal else "")
        )
    for kind in ("sample", "realistic"):
        r = results.get(f"layout matrix, {kind}")
        p = results.get(PUBLISHED if kind == "sample" else f"{PUBLISHED}, realistic")
        if r is not None:
            lines += _matrix_lines(r, f"layout matrix, {kind} tile", p.metrics["bytes"] if p else None)
    return lines
