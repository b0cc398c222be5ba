"""Writing one shard of a zone: assemble in inner-chunk row bands, encode, place atomically, receipt.

Memory per worker is bounded by one row band of the shard, not the shard:
int8 (128, 32, 4096) = 16 MiB plus float32 (32, 4096) = 512 KiB, the band's
slice of each tile (about 3 MiB for a real tile, read from memory-mapped
``.npy`` files) and two shard indexes of 256 KiB and 64 KiB. Encoded chunks go
straight to a temporary file beside the shard object (:func:`geotessera.files.atomic_path`),
which replaces the shard when complete; the receipt is written after both arrays'
shards, so a shard is complete only by its receipt.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...files import atomic_path, crc64nvme_file, write_atomic
from ...tiles import load_tile_arrays, valid_scale_mask
from ..conventions import N_BANDS, zone_group_name
from ..layout import ArrayLayout
from .encoder import ShardEncoder
from .tiles import TileInput, cell_mask

log = logging.getLogger(__name__)

SHARD = 4096
INNER = 32
RECEIPT_VERSION = 1


@dataclass(frozen=True)
class ShardTask:
    """One shard (zone, year, shard_row, shard_col) and the tiles placed on it (tile, zone row, zone col)."""

    store: Path
    zone: int
    year: int
    t: int
    shard_row: int
    shard_col: int
    res: float
    x0: float
    y0: float
    placed: list[tuple[TileInput, int, int]]

    @property
    def key(self) -> str:
        """``utmNN/{year}/{shard_row}_{shard_col}`` for progress events and logs."""
        return f"{zone_group_name(self.zone)}/{self.year}/{self.shard_row}_{self.shard_col}"

    def receipt_path(self, array: str) -> Path:
        """``{store}/utmNN/.receipts/{array}/{year}/{row}_{col}.json``."""
        return (
            self.store
            / zone_group_name(self.zone)
            / ".receipts"
            / array
            / str(self.year)
            / f"{self.shard_row}_{self.shard_col}.json"
        )

    def plan_entries(self) -> list[dict[str, Any]]:
        """The receipt's tile list: name, placement and input identities (size, mtime)."""
        out = []
        for tile, row, col in sorted(self.placed, key=lambda p: p[0].cell):
            e, s = tile.embedding_path.stat(), tile.scales_path.stat()
            out.append(
                {
                    "tile": tile.cell.name,
                    "row": row,
                    "col": col,
                    "embedding_bytes": e.st_size,
                    "embedding_mtime_ns": e.st_mtime_ns,
                    "scales_bytes": s.st_size,
                    "scales_mtime_ns": s.st_mtime_ns,
                }
            )
        return out


def read_receipt(task: ShardTask, array: str) -> dict[str, Any] | None:
    """The receipt JSON of ``array``'s shard, or None when absent or unreadable."""
    try:
        data: dict[str, Any] = json.loads(task.receipt_path(array).read_text())
        return data
    except (OSError, ValueError):
        return None


def receipt_matches(receipt: dict[str, Any] | None, task: ShardTask) -> bool:
    """True when the receipt records exactly this task's tiles, placements and inputs."""
    if receipt is None or receipt.get("version") != RECEIPT_VERSION or receipt.get("t") != task.t:
        return False
    got = [{k: v for k, v in e.items() if not k.endswith("crc64nvme")} for e in receipt.get("tiles", [])]
    return got == task.plan_entries()


@lru_cache(maxsize=1024)
def _crc(path: Path, size: int, mtime_ns: int) -> str:
    return crc64nvme_file(path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=1).encode())


@lru_cache(maxsize=256)
def _layout(meta_path: Path, array_path: str) -> ArrayLayout:
    meta = json.loads(meta_path.read_text())
    layout = ArrayLayout.from_metadata(array_path, meta)
    if layout is None:  # pragma: no cover - we created the array ourselves
        raise RuntimeError(f"unexpected array layout at {meta_path}")
    return layout


def _clean_scales(s: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float32], int]:
    """(valid mask, scales with NaN for water/invalid, count of implausible finite scales)."""
    finite = np.isfinite(s)
    valid = valid_scale_mask(s)
    out = np.where(valid, s, np.float32(np.nan)).astype(np.float32)
    return valid, out, int((finite & ~valid).sum())


def requantize_per_band(
    q: npt.NDArray[np.int8], s: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """Per-pixel-per-band scales (h, w, 128) -> one scale per pixel (h, w), requantising q (h, w, 128)."""
    bad = ~valid_scale_mask(s)
    with np.errstate(invalid="ignore", over="ignore"):
        v = q.astype(np.float32) * np.where(bad, 0, s)
        amax = np.abs(v).max(axis=2)
        scale = (amax / 127).astype(np.float32)
        safe = np.where(scale > 0, scale, 1)[..., None]
        q2 = np.clip(np.rint(v / safe), -127, 127).astype(np.int8)
    scale[bad.any(axis=2)] = np.nan
    return q2, scale


def write_shard_task(task: ShardTask) -> tuple[int, int]:
    """Write the ``embeddings`` and ``scales`` shards of ``task``, then their receipts.

    Returns (bytes written, implausible scale pixels voided).
    """
    for array in ("embeddings", "scales"):
        task.receipt_path(array).unlink(missing_ok=True)
    group = task.store / zone_group_name(task.zone)
    lay_e = _layout(group / "embeddings" / "zarr.json", f"{group.name}/embeddings")
    lay_s = _layout(group / "scales" / "zarr.json", f"{group.name}/scales")
    path_e = task.store / lay_e.shard_key((task.t, 0, task.shard_row, task.shard_col))
    path_s = task.store / lay_s.shard_key((task.t, task.shard_row, task.shard_col))
    with atomic_path(path_e) as tmp_e, atomic_path(path_s) as tmp_s:
        encoders: list[ShardEncoder] = []
        try:
            encoders += [ShardEncoder(lay_e, tmp_e), ShardEncoder(lay_s, tmp_s)]
            enc_e, enc_s = encoders
            n_bad = _fill(task, enc_e, enc_s)
            size = enc_e.finish() + enc_s.finish()
        except BaseException:
            for enc in encoders:
                enc.abort()
            raise
    for path, enc in ((path_e, enc_e), (path_s, enc_s)):
        if not enc.n_chunks:
            path.unlink(missing_ok=True)  # an all-fill shard is simply absent
    entries = task.plan_entries()
    for e, (tile, _, _) in zip(entries, sorted(task.placed, key=lambda p: p[0].cell), strict=True):
        e["embedding_crc64nvme"] = _crc(tile.embedding_path, e["embedding_bytes"], e["embedding_mtime_ns"])
        e["scales_crc64nvme"] = _crc(tile.scales_path, e["scales_bytes"], e["scales_mtime_ns"])
    for array, n in (("embeddings", enc_e.n_chunks), ("scales", enc_s.n_chunks)):
        _write_json(
            task.receipt_path(array),
            {
                "version": RECEIPT_VERSION,
                "array": array,
                "year": task.year,
                "t": task.t,
                "shard": [task.shard_row, task.shard_col],
                "inner_chunks": n,
                "tiles": entries,
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    return size, n_bad


def _fill(task: ShardTask, enc_e: ShardEncoder, enc_s: ShardEncoder) -> int:
    """Assemble the shard band by band (INNER rows at a time) and feed the encoders."""
    r_base, c_base = task.shard_row * SHARD, task.shard_col * SHARD
    epsg = 32600 + task.zone
    arrays = {id(t): load_tile_arrays(t.embedding_path, t.scales_path) for t, _, _ in task.placed}
    emb = np.zeros((N_BANDS, INNER, SHARD), dtype=np.int8)
    scl = np.full((INNER, SHARD), np.inf, dtype=np.float32)
    per_row = SHARD // INNER
    n_bad = 0
    for band in range(per_row):
        r0 = r_base + band * INNER
        touched: set[int] = set()
        for tile, row, col in task.placed:
            zr0, zr1 = max(r0, row), min(r0 + INNER, row + tile.grid.height)
            zc0, zc1 = max(c_base, col), min(c_base + SHARD, col + tile.grid.width)
            if zr0 >= zr1 or zc0 >= zc1:
                continue
            ys = (task.y0 - (np.arange(zr0, zr1) + 0.5) * task.res).astype(np.float64)
            xs = (task.x0 + (np.arange(zc0, zc1) + 0.5) * task.res).astype(np.float64)
            mask = cell_mask(tile.cell, epsg, xs, ys, halo=True)
            if not mask.any():
                continue
            ta = arrays[id(tile)]
            q = np.asarray(ta.quantized[zr0 - row : zr1 - row, zc0 - col : zc1 - col])
            s = np.asarray(ta.scales[zr0 - row : zr1 - row, zc0 - col : zc1 - col], dtype=np.float32)
            if s.ndim == 3:
                q, s = requantize_per_band(q, s)
            valid, s_out, bad = _clean_scales(s)
            n_bad += int((mask & np.isfinite(s) & ~valid).sum()) if bad else 0
            q = np.where((mask & valid)[..., None], q, 0).astype(np.int8)
            br0, br1, bc0, bc1 = zr0 - r0, zr1 - r0, zc0 - c_base, zc1 - c_base
            scl[br0:br1, bc0:bc1] = np.where(mask, s_out, scl[br0:br1, bc0:bc1])
            dst = emb[:, br0:br1, bc0:bc1]
            emb[:, br0:br1, bc0:bc1] = np.where(mask[None], q.transpose(2, 0, 1), dst)
            touched.update(range(bc0 // INNER, (bc1 - 1) // INNER + 1))
        for cc in sorted(touched):
            sl = slice(cc * INNER, (cc + 1) * INNER)
            linear = band * per_row + cc
            enc_e.add(linear, emb[None, :, :, sl])
            enc_s.add(linear, scl[None, :, sl])
            emb[:, :, sl] = 0
            scl[:, sl] = np.inf
    if n_bad:
        log.warning("%s: %d pixels had implausible scales outside [0, 1); stored as NaN", task.key, n_bad)
    return n_bad
