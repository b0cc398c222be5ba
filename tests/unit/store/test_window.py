"""Window reads: the dequantiser (band-major int8 -> pixel-major float32) and read_window vs. numpy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from affine import Affine

import geotessera.store.read.chunk_reader as chunk_reader
import geotessera.store.read.requests as requests
from geotessera.errors import CorruptDataError
from geotessera.store.conventions import ZoneInfo
from geotessera.store.layout import ArrayLayout
from geotessera.store.read.cache import DiskCache
from geotessera.store.read.chunk_groups import ChunkGroup
from geotessera.store.read.chunk_reader import ChunkReader
from geotessera.store.read.points import gather
from geotessera.store.read.requests import join_requests
from geotessera.store.read.windows import Dequantiser, read_window
from geotessera.store.read.zones import NODATA, VALID, WATER, Zone
from geotessera.transfer import LocalSource

H, W = 160, 130  # not multiples of the 32 x 32 inner chunks


@pytest.mark.parametrize("bands", [16, 12])
@pytest.mark.parametrize(("lr0", "lr1"), [(0, 2), (5, 9), (31, 32), (0, 32)])
@pytest.mark.parametrize(("c0", "w"), [(0, 32), (3, 29), (8, 16), (13, 5), (17, 4), (31, 1), (0, 7), (2, 27)])
def test_dequantiser_matches_float32_product(bands: int, lr0: int, lr1: int, c0: int, w: int) -> None:
    rng = np.random.default_rng(bands + lr0 + c0)
    deq = Dequantiser((bands, 32, 32))
    for _ in range(2):  # scratch reuse: a second chunk gives its own values
        chunk = rng.integers(-128, 128, (bands, 32, 32), dtype=np.int8)
        n = lr1 - lr0
        s = rng.uniform(0.001, 0.9, (n, w)).astype(np.float32)
        s[rng.random((n, w)) < 0.1] = np.nan
        s[rng.random((n, w)) < 0.1] = 0.0  # exact zero: -0.0 where q < 0, as the plain product
        pix = chunk[:, lr0:lr1, c0 : c0 + w].transpose(1, 2, 0)
        want = pix.astype(np.float32) * s[..., None]
        wide = np.full((n, w + 9, bands), 5.0, dtype=np.float32)  # dst: a column slice of a wider array
        deq(chunk, lr0, lr1, c0, s, wide[:, 2 : 2 + w])
        np.testing.assert_array_equal(wide[:, 2 : 2 + w], want)
        assert (np.signbit(wide[:, 2 : 2 + w]) == np.signbit(want))[~np.isnan(want)].all()
        np.testing.assert_array_equal(wide[:, :2], 5.0)
        np.testing.assert_array_equal(wide[:, 2 + w :], 5.0)


def _zone(
    tmp_path: Path, bands: int, layout: str = "sharded", scale_shuffle: str = "shuffle"
) -> tuple[Zone, np.ndarray, np.ndarray]:
    """A zone of H x W pixels: random int8, scales with water (NaN), no data (+inf), implausible
    values (2.0), an all-water chunk and chunk row, and a never-written (absent) embedding
    chunk with valid scales. ``layout``: "sharded" (formats.md), "unsharded" (one object per
    chunk), "crc" (sharded, each inner chunk closed by a crc32c, as geotessera builds) or
    "fallback" (a second compressor: not direct, read through zarr-python).
    Embeddings are bit-shuffled, scales shuffled by ``scale_shuffle`` (formats.md: "shuffle")."""
    rng = np.random.default_rng(7)
    q = rng.integers(-127, 128, (1, bands, H, W), dtype=np.int8)
    s = rng.uniform(0.001, 0.9, (1, H, W)).astype(np.float32)
    s[0, rng.random((H, W)) < 0.05] = np.nan
    s[0, rng.random((H, W)) < 0.05] = np.inf
    s[0, 3, 7] = 2.0
    s[0, 64:96, 32:64] = np.nan  # a chunk of water: its embeddings need not be read
    s[0, 128:160] = np.nan  # a row of chunks with nothing to read
    q[0, :, 96:128, 64:96] = 0  # all fill: not stored
    root = zarr.open_group(tmp_path / "z.zarr", mode="w", zarr_format=3)
    blosc: Any = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
    extra = {"fallback": zarr.codecs.ZstdCodec(level=1), "crc": zarr.codecs.Crc32cCodec()}.get(layout)
    if extra is not None:
        blosc = [blosc, extra]
    shards = layout != "unsharded"
    e = root.create_array(
        "e", shape=q.shape, dtype="int8", chunks=(1, bands, 32, 32),
        shards=(1, bands, 64, 64) if shards else None,
        compressors=blosc, fill_value=0, dimension_names=("time", "band", "y", "x"),
    )  # fmt: skip
    e[...] = q
    sblosc: Any = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle=scale_shuffle)
    if extra is not None:
        sblosc = [sblosc, extra]
    a = root.create_array(
        "s", shape=s.shape, dtype="float32", chunks=(1, 32, 32), shards=(1, 64, 64) if shards else None,
        compressors=sblosc, fill_value=np.inf,
    )  # fmt: skip
    a[...] = s
    lay = {}
    for name in ("e", "s"):
        meta = json.loads((tmp_path / "z.zarr" / name / "zarr.json").read_text())
        parsed = ArrayLayout.from_metadata(name, meta)
        assert parsed is not None and parsed.direct == (layout != "fallback")
        assert parsed.inner_crc == (layout == "crc")
        lay[name] = parsed
    info = ZoneInfo(31, 32631, Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5800000.0), (H, W))
    return Zone(info, lay["e"], lay["s"], [2023], "+inf"), q[0], s[0]


def _expected(q: np.ndarray, s: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """float32(q) * s where the scale is in [0, 1), else NaN; NaN outside the grid."""
    out = np.full((r1 - r0, c1 - c0, q.shape[0]), np.nan, dtype=np.float32)
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, H), max(c0, 0), min(c1, W)
    sc = s[rr0:rr1, cc0:cc1]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(sc) & (sc >= 0) & (sc < 1)
        vals = q[:, rr0:rr1, cc0:cc1].transpose(1, 2, 0).astype(np.float32) * sc[..., None]
    out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = np.where(ok[..., None], vals, np.nan)
    return out


@pytest.mark.parametrize("bands", [16, 12])
@pytest.mark.parametrize("window", [(0, H, 0, W), (5, 101, 17, 90), (-9, 40, 100, W + 11), (150, 170, -5, 3)])
def test_read_window_matches_reference(tmp_path: Path, bands: int, window: tuple[int, int, int, int]) -> None:
    zone, q, s = _zone(tmp_path, bands)
    reader = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=3)
    r0, r1, c0, c1 = window
    out = np.full((r1 - r0, c1 - c0, bands), 12345.0, dtype=np.float32)  # garbage: all is written
    have = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    n_bad = read_window(reader, zone, 0, r0, r1, c0, c1, out, have)
    want = _expected(q, s, r0, r1, c0, c1)
    np.testing.assert_array_equal(out, want)
    inside = np.zeros_like(have)
    inside[max(r0, 0) - r0 : min(r1, H) - r0, max(c0, 0) - c0 : min(c1, W) - c0] = True
    sc = np.full(have.shape, np.inf, dtype=np.float32)
    sc[inside] = s[max(r0, 0) : min(r1, H), max(c0, 0) : min(c1, W)].ravel()
    with np.errstate(invalid="ignore"):
        data = inside & ~np.isinf(sc) & ~(np.isfinite(sc) & ~((sc >= 0) & (sc < 1)))
    np.testing.assert_array_equal(have, data)  # valid or water
    assert n_bad == int(r0 <= 3 < r1 and c0 <= 7 < c1)
    reader.close()


def test_read_window_leaves_blocked_pixels_alone(tmp_path: Path) -> None:
    zone, q, s = _zone(tmp_path, 16)
    reader = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=2)
    r0, r1, c0, c1 = 10, 170, 3, 125
    h, w = r1 - r0, c1 - c0
    rng = np.random.default_rng(3)
    have = rng.random((h, w)) < 0.2
    allow = rng.random((h, w)) < 0.7
    allow[40:72] = True  # whole rows with nothing blocked by allow
    have[40:72] = False
    out = np.full((h, w, 16), 7.0, dtype=np.float32)
    before = have.copy()
    read_window(reader, zone, 0, r0, r1, c0, c1, out, have, allow)
    blocked = before | ~allow
    np.testing.assert_array_equal(out[blocked], 7.0)
    np.testing.assert_array_equal(out[~blocked], _expected(q, s, r0, r1, c0, c1)[~blocked])
    assert (have[blocked] == before[blocked]).all()
    reader.close()


def _zarr_fallback(root: Path) -> Any:
    """A ChunkReader fallback: one inner chunk read through zarr-python."""
    group = zarr.open_group(root, mode="r")

    def read(layout: ArrayLayout, coords: tuple[int, ...]) -> np.ndarray:
        sl = tuple(slice(c * n, (c + 1) * n) for c, n in zip(coords, layout.inner_shape, strict=True))
        data = np.asarray(group[layout.path][sl])
        pad = [(0, n - d) for n, d in zip(layout.inner_shape, data.shape, strict=True)]
        return np.pad(data, pad, constant_values=layout.fill_value)

    return read


@pytest.mark.parametrize(
    ("layout", "scale_shuffle", "batch"),
    [
        ("sharded", "shuffle", False),
        ("sharded", "shuffle", True),
        ("sharded", "bitshuffle", True),  # scales decoded whole (bit shuffle of 4-byte values)
        ("unsharded", "shuffle", True),
        ("crc", "shuffle", False),
        ("crc", "bitshuffle", True),
        ("fallback", "shuffle", True),
    ],
)
def test_gather_matches_reference(tmp_path: Path, layout: str, scale_shuffle: str, batch: bool) -> None:
    zone, q, s = _zone(tmp_path, 16, layout, scale_shuffle)
    root = tmp_path / "z.zarr"
    fallback = _zarr_fallback(root)
    reader = ChunkReader(LocalSource(root), workers=3, fallback=fallback, batch_requests=batch)
    rng = np.random.default_rng(11)
    rows = np.r_[rng.integers(0, H, 600), 0, H - 1, 3, 100, 70, 140]  # edges, implausible, absent, water
    cols = np.r_[rng.integers(0, W, 600), 0, W - 1, 7, 70, 40, 10]
    vals, status, n_bad = gather(reader, zone, 0, rows, cols)
    sc = s[rows, cols]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(sc) & (sc >= 0) & (sc < 1)
        want = np.where(ok[:, None], q[:, rows, cols].T.astype(np.float32) * sc[:, None], np.nan)
    want_status = np.where(ok, VALID, np.where(np.isnan(sc), WATER, NODATA))
    np.testing.assert_array_equal(status, want_status)
    np.testing.assert_array_equal(vals, want)
    assert n_bad == int(((rows == 3) & (cols == 7)).sum())  # the one implausible scale (2.0)
    reader.close()


@pytest.mark.parametrize("batch", [False, True])
def test_chunk_groups_bound_the_decoded_bytes_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: bool
) -> None:
    zone, q, _ = _zone(tmp_path, 16)
    reader = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=2, batch_requests=batch)
    chunk_bytes = 16 * 32 * 32
    monkeypatch.setattr(requests, "MAX_DECODED_BYTES", 3 * chunk_bytes)
    coords = np.array([(0, 0, r, c) for r in range(5) for c in range(5)], dtype=np.int64)
    seen: dict[tuple[int, ...], np.ndarray | None] = {}
    sizes: list[int] = []

    every = np.arange(16 * 32 * 32).reshape(16, 32, 32)

    def on_group(cs: list[tuple[int, ...]], group: ChunkGroup | None) -> None:
        sizes.append(len(cs))
        for i, c in enumerate(cs):
            seen[c] = None if group is None else group.take(np.array(i), every)[None]

    reader.read_chunk_groups(zone.embeddings, coords, on_group)
    assert max(sizes) == 3 and sorted(seen) == sorted(map(tuple, coords.tolist()))
    for (_, _, r, c), got in seen.items():
        want = q[:, r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
        if got is None:  # absent: all fill
            assert not want.any()
        else:
            np.testing.assert_array_equal(got[0, :, : want.shape[1], : want.shape[2]], want)
    reader.close()


def test_batches_join_one_shards_requests_within_both_caps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone, _, _ = _zone(tmp_path, 16)
    chunk_bytes = 16 * 32 * 32
    monkeypatch.setattr(requests, "MAX_DECODED_BYTES", 4 * chunk_bytes)

    def req(first: int, n: int, size: int = 100) -> list[tuple[tuple[int, ...], int, int]]:
        return [((first + i,), (first + i) * size, size) for i in range(n)]

    big = 2 * chunk_bytes
    plan = [("a", req(0, 1)), ("a", req(5, 2)), ("a", req(9, 1)), ("a", req(20, 1)), ("a", req(30, 1)),
            ("b", req(0, 2)), ("b", req(40, 3)), ("b", req(50, 2, big)), ("b", req(60, 1))]  # fmt: skip
    batches = list(join_requests(zone.embeddings, plan, True))
    assert [(k, [[c[0][0] for c in g] for g in gs]) for k, gs in batches] == [
        ("a", [[0], [5, 6], [9]]),  # 4 chunks; a fifth would exceed MAX_DECODED_BYTES decoded
        ("a", [[20], [30]]),  # the shard ends
        ("b", [[0, 1]]),
        ("b", [[40, 41, 42]]),
        ("b", [[50, 51]]),  # reads 4 x chunk_bytes: one more byte would exceed the bytes read
        ("b", [[60]]),
    ]
    assert list(join_requests(zone.embeddings, plan, False)) == [(k, [g]) for k, g in plan]
    joins: list[bool] = []

    def spy(layout: ArrayLayout, plan: Any, join: bool) -> Any:
        joins.append(join)
        return join_requests(layout, plan, join)

    monkeypatch.setattr(chunk_reader, "join_requests", spy)
    coords = np.array([(0, 0, 0, 0), (0, 0, 1, 1)], dtype=np.int64)
    for batch in (False, True):
        r = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=1, batch_requests=batch)
        r.read_chunk_groups(zone.embeddings, coords, lambda cs, g: None)
        r.read_chunks(zone.embeddings, coords, lambda c, a: None)  # one request per task, always
        r.close()
    assert joins == [False, False, True, False]


def test_a_corrupt_shard_index_is_refused_every_time(tmp_path: Path) -> None:
    zone, _, _ = _zone(tmp_path, 16)
    path = tmp_path / "z.zarr" / zone.scales.shard_key((0, 0, 0))
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 1  # an index entry: the crc32c no longer matches
    path.write_bytes(bytes(blob))
    reader = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=2)
    for _ in range(2):  # not cached once refused
        with pytest.raises(CorruptDataError, match="crc32c"):
            gather(reader, zone, 0, np.array([1, 2]), np.array([3, 4]))
    reader.close()
    cached = DiskCache(tmp_path / "cache", "store")
    cached.put(zone.scales.shard_key((0, 0, 0)), "index", bytes(blob[-zone.scales.index_nbytes :]))
    reader = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=2, disk=cached)
    with pytest.raises(CorruptDataError, match="crc32c"):  # a damaged cache entry too
        reader.shard_index(zone.scales, (0, 0, 0))
    reader.close()


def test_one_threading_contract_nested_calls_run_inline(tmp_path: Path) -> None:
    """Callbacks and tasks run on the reader's threads; a read made from inside one runs right
    there, so even one worker whose task reads chunks cannot deadlock."""
    import threading

    zone, q, _ = _zone(tmp_path, 16)
    reader = ChunkReader(LocalSource(tmp_path / "z.zarr"), workers=1)
    caller = threading.get_ident()
    coords = np.array([(0, 0, r, c) for r in range(3) for c in range(3)], dtype=np.int64)
    threads: set[int] = set()
    got: dict[tuple[int, ...], np.ndarray | None] = {}

    def task(r: int) -> None:
        threads.add(threading.get_ident())
        row = coords[coords[:, 2] == r]

        def on(c: tuple[int, ...], arr: np.ndarray | None) -> None:
            threads.add(threading.get_ident())
            got[c] = arr

        reader.read_chunks(zone.embeddings, row, on)  # nested: inline on this worker
        with reader.cpu, reader.cpu:  # the CPU gate lets its holder in again
            reader.read_chunk_groups(zone.embeddings, row, lambda cs, g: threads.add(threading.get_ident()))

    done = threading.Event()
    runner = threading.Thread(target=lambda: (reader.run_each(task, range(3)), done.set()), daemon=True)
    runner.start()
    assert done.wait(30), "a nested read waited on the pool: deadlock"
    assert caller not in threads and len(threads) == 1  # everything on the one reader thread
    for (_, _, r, c), arr in got.items():
        want = q[:, r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
        if arr is None:
            assert not want.any()
        else:
            np.testing.assert_array_equal(arr[0, :, : want.shape[1], : want.shape[2]], want)
    assert len(got) == 9
    reader.close()
