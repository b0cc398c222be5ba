"""GeoTIFF writer: strips, bands, nodata, georeferencing, tags (formats.md section 5)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from geotessera.errors import CorruptDataError, InvalidInputError, OutputError, ScaleWarning
from geotessera.export import write_embedding_geotiff
from geotessera.export.geotiff import (
    COMPRESSIONS,
    LAYOUTS,
    LEVELS,
    Compression,
    creation_options,
    normalize_compress,
)
from geotessera.grid import PixelGrid
from geotessera.tiles import open_tile
from geotessera.tiles.dequantize import dequantize_band_major, dequantize_embedding


def _tile(h: int = 600, w: int = 70, seed: int = 0) -> tuple[np.ndarray, np.ndarray, PixelGrid]:
    rng = np.random.default_rng(seed)
    q = rng.integers(-127, 128, (h, w, 128), dtype=np.int8)
    s = rng.uniform(0.03, 0.1, (h, w)).astype(np.float32)
    s[5, 5] = np.nan
    s[h - 1, w - 1] = np.inf
    return q, s, PixelGrid(32631, Affine(10, 0, 300000, 0, -10, 5800000), (h, w))


@pytest.mark.parametrize("strip_rows", [16, 32, 256, 10_000])
@pytest.mark.parametrize("compress", ["none", "deflate", "lzw"])
def test_strips_reassemble_the_tile(tmp_path: Path, strip_rows: int, compress: str) -> None:
    q, s, grid = _tile()
    out = write_embedding_geotiff(
        tmp_path / "t.tif",
        q,
        s,
        grid,
        compress=compress,
        strip_rows=strip_rows,
        tags={"TESSERA_YEAR": "2024"},
    )
    with rasterio.open(out) as ds:
        assert ds.transform == grid.transform and ds.crs.to_epsg() == 32631
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.tags()["TESSERA_YEAR"] == "2024"
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), dequantize_embedding(q, s))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_band_selection_keeps_original_indices(tmp_path: Path) -> None:
    q, s, grid = _tile(h=40)
    out = write_embedding_geotiff(tmp_path / "b.tif", q, s, grid, bands=[127, 3], compress="zstd")
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("Tessera_Band_127", "Tessera_Band_3")
        np.testing.assert_array_equal(
            ds.read().transpose(1, 2, 0), dequantize_embedding(q, s)[:, :, [127, 3]]
        )


def test_grid_mismatch_and_bad_options(tmp_path: Path) -> None:
    q, s, grid = _tile(h=40)
    with pytest.raises(OutputError, match="does not match"):
        write_embedding_geotiff(tmp_path / "x.tif", q, s, grid[0:39, :])
    with pytest.raises(InvalidInputError):
        write_embedding_geotiff(tmp_path / "x.tif", q, s, grid, compress="jpeg")
    with pytest.raises(InvalidInputError):
        write_embedding_geotiff(tmp_path / "x.tif", q, s, grid, bands=[0, 0])
    assert not list(tmp_path.iterdir())


def test_band_major_threads_split_rows_exactly() -> None:
    q, s, _ = _tile(h=601, w=33)
    ref = dequantize_embedding(q, s).transpose(2, 0, 1)
    for threads in (1, 2, 3):
        out = np.full((128, 601, 33), 7.0, np.float32)
        dequantize_band_major(q, s, out, threads=threads)
        np.testing.assert_array_equal(out, ref)


def test_open_tile_refuses_a_landmask_of_another_size(tmp_path: Path) -> None:
    q, s, grid = _tile(h=20, w=10)
    np.save(tmp_path / "e.npy", q)
    np.save(tmp_path / "s.npy", s)
    prof = {
        "driver": "GTiff",
        "dtype": "uint8",
        "count": 1,
        "height": 21,
        "width": 10,
        "crs": "EPSG:32631",
        "transform": grid.transform,
    }
    with rasterio.open(tmp_path / "m.tif", "w", **prof) as ds:
        ds.write(np.ones((1, 21, 10), np.uint8))
    with pytest.raises(CorruptDataError, match="20 x 10 pixels but its landmask"):
        open_tile(tmp_path / "e.npy", tmp_path / "s.npy", tmp_path / "m.tif")


# --- compressions, levels and layouts (issue 14) -------------------------------------------
# high levels take minutes even on a small tile (padded to 256 x 256 blocks): their options are checked below
ALL_OPTIONS = ["lzw", "deflate", "deflate:1", "deflate:9", "zstd", "zstd:3", "none"]


@pytest.mark.parametrize("compress", ALL_OPTIONS)
def test_every_compression_reads_back_exactly_with_rasterio(tmp_path: Path, compress: str) -> None:
    q, s, grid = _tile(h=300, w=40, seed=3)
    tags = {"TESSERA_YEAR": "2024", "TESSERA_TILE_LON": "0.15"}
    out = write_embedding_geotiff(tmp_path / "c.tif", q, s, grid, compress=compress, tags=tags)
    c = Compression.parse(compress)
    interleave, predictor = LAYOUTS[c.name]
    window = rasterio.windows.Window(col_off=10, row_off=250, width=30, height=50)  # crosses a block edge
    with rasterio.open(out) as ds:
        assert ds.count == 128 and ds.dtypes[0] == "float32" and ds.nodata is not None and np.isnan(ds.nodata)
        assert ds.block_shapes[0] == (256, 256)
        assert ds.interleaving.name.lower() == interleave
        structure = ds.tags(ns="IMAGE_STRUCTURE")
        if c.name == "none":
            assert ds.compression is None
        else:
            assert ds.compression.name.lower() == c.name
            assert structure.get("PREDICTOR", "1") == str(predictor)
        assert ds.descriptions == tuple(f"Tessera_Band_{i}" for i in range(128))
        assert {k: ds.tags()[k] for k in tags} == tags
        got = ds.read(window=window)
    expected = dequantize_embedding(q, s)[250:300, 10:40].transpose(2, 0, 1)
    assert np.isnan(expected).any()  # the nodata pixel is inside the window
    np.testing.assert_array_equal(got, expected)  # NaN where NaN, every other value bit-exact


def test_layouts_match_the_published_client_for_lzw() -> None:
    opts = creation_options("lzw")
    assert opts["interleave"] == "pixel" and "predictor" not in opts and opts["compress"] == "lzw"
    assert (opts["blockxsize"], opts["blockysize"], opts["tiled"]) == (256, 256, True)
    assert creation_options("zstd:9")["zstd_level"] == 9 and creation_options("zstd")["zstd_level"] == 1
    assert creation_options("deflate:1")["zlevel"] == 1 and creation_options("deflate")["zlevel"] == 6
    assert creation_options("zstd:22")["zstd_level"] == 22 and creation_options("deflate:12")["zlevel"] == 12
    assert "compress" not in creation_options("none")
    over = creation_options("lzw", interleave="band", predictor=3, threads=1)
    assert (over["interleave"], over["predictor"], over["num_threads"]) == ("band", 3, "1")


@pytest.mark.parametrize(
    "bad",
    ["jpeg", "lzw:1", "none:3", "zstd:0", "zstd:23", "deflate:13", "deflate:", "zstd:x", "zstd:-1", ":3"],
)
def test_bad_compressions_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        normalize_compress(bad)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(COMPRESSIONS),
    level=st.one_of(st.none(), st.integers(-5, 40)),
    upper=st.booleans(),
    pad=st.sampled_from(["", " "]),
)
def test_compression_parsing_property(name: str, level: int | None, upper: bool, pad: str) -> None:
    text = name if level is None else f"{name}:{level}"
    text = pad + (text.upper() if upper else text) + pad
    ok = level is None or (name in LEVELS and LEVELS[name][0] <= level <= LEVELS[name][1])
    if not ok:
        with pytest.raises(InvalidInputError):
            Compression.parse(text)
        return
    c = Compression.parse(text)
    assert c.name == name
    expected_level = None if name not in LEVELS else (LEVELS[name][2] if level is None else level)
    assert c.level == expected_level
    assert Compression.parse(c.spec) == c  # the canonical text round-trips
    assert normalize_compress(text) == c.spec


def _write_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> tuple[bytes, bytes]:
    """The default export written by our encoder and by GDAL's (the encoder switched off)."""
    from geotessera.export import lzw_tiles

    q, s, grid = _tile(h=300, w=270)
    calls = []
    real_fill = lzw_tiles.fill_lzw_tiles
    monkeypatch.setattr(lzw_tiles, "fill_lzw_tiles", lambda *a, **k: calls.append(1) or real_fill(*a, **k))
    ours = write_embedding_geotiff(tmp_path / "ours.tif", q, s, grid, tags={"TESSERA_YEAR": "2024"}, **kwargs)
    assert calls, "the default layout did not go through our encoder"
    monkeypatch.setattr(lzw_tiles, "_encoder", None)
    gdal = write_embedding_geotiff(tmp_path / "gdal.tif", q, s, grid, tags={"TESSERA_YEAR": "2024"}, **kwargs)
    assert len(calls) == 1, "without the encoder GDAL must write the tiles"
    return ours.read_bytes(), gdal.read_bytes()


@pytest.mark.parametrize("kwargs", [{}, {"bands": [5, 0, 127]}, {"threads": 1}])
def test_with_libtiffs_table_the_default_export_is_gdals_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object]
) -> None:
    """Same header, same compressed tiles in the same order, partial tiles padded with zeros
    as GDAL pads a block written whole: with libtiff's table size the file our encoder fills
    is the file GDAL writes, byte for byte."""
    from geotessera.export import lzw_tiles

    monkeypatch.setattr(lzw_tiles, "SMALL_TABLE", lzw_tiles.LIBTIFF_TABLE)
    ours, gdal = _write_both(tmp_path, monkeypatch, **kwargs)
    assert ours == gdal


@pytest.mark.parametrize("kwargs", [{}, {"bands": [5, 0, 127]}])
def test_the_default_export_is_gdals_image_in_smaller_tiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object]
) -> None:
    """With the encoder's small tables (a Clear every 252 codes of 9 bits) libtiff reads the
    same pixels, profile, tags and band descriptions as from GDAL's own file; only the tiles'
    bytes differ (and the offsets that point at them)."""
    ours, gdal = _write_both(tmp_path, monkeypatch, **kwargs)
    assert ours != gdal
    views = []
    for name in ("ours.tif", "gdal.tif"):
        with rasterio.open(tmp_path / name) as ds:
            assert np.isnan(ds.nodata)  # NaN: compared here, as NaN != NaN in the profiles
            profile = {k: v for k, v in ds.profile.items() if k != "nodata"}
            views.append((ds.read(), profile, ds.tags(), ds.descriptions, ds.tags(ns="IMAGE_STRUCTURE")))
    (a, *meta_a), (b, *meta_b) = views
    np.testing.assert_array_equal(a, b)
    assert meta_a == meta_b


def test_an_independent_reader_reads_the_default_export(tmp_path: Path) -> None:
    """tifffile decodes LZW with imagecodecs' own decoder, not libtiff: the small tables, the
    Clears between them, the large tables after runs of water and the zero-padded edge tiles
    must read back as the values, as QGIS (GDAL) reads them."""
    import tifffile

    q, s, grid = _tile(h=530, w=300)
    s[:200, :150] = np.nan  # water: long NaN runs, then a large table
    out = write_embedding_geotiff(tmp_path / "t.tif", q, s, grid)
    with tifffile.TiffFile(out) as tf:
        page = tf.pages[0]
        assert (page.compression, page.planarconfig, page.tilewidth) == (5, 1, 256)  # LZW, pixel
        got = page.asarray()
    np.testing.assert_array_equal(got, dequantize_embedding(q, s))


def test_default_export_does_not_depend_on_strips(tmp_path: Path) -> None:
    """Strips of any height give the same file (GDAL's own writer does not: with short strips
    its cache pads partial tiles with nodata, not zeros, so their bytes differ)."""
    q, s, grid = _tile(h=300, w=270)
    files = [
        write_embedding_geotiff(tmp_path / f"{rows}.tif", q, s, grid, strip_rows=rows).read_bytes()
        for rows in (16, 48, 256, 10_000)
    ]
    assert all(f == files[0] for f in files[1:])


def test_default_export_reads_back_with_nodata_and_warns_once(tmp_path: Path) -> None:
    q, s, grid = _tile(h=530, w=300)
    s[7, 9] = 5.0  # implausible: voided, reported once for the file
    with pytest.warns(ScaleWarning, match="1 pixels") as record:
        out = write_embedding_geotiff(tmp_path / "t.tif", q, s, grid, strip_rows=16)
    assert len([w for w in record if issubclass(w.category, ScaleWarning)]) == 1
    with rasterio.open(out) as ds:
        got = ds.read().transpose(1, 2, 0)
        assert np.isnan(ds.nodata) and ds.profile["compress"] == "lzw" and ds.profile["interleave"] == "pixel"
    want = dequantize_embedding(q, np.where(s == 5.0, np.nan, s))
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got[7, 9]).all() and np.isnan(got[5, 5]).all()


def test_wide_rows_are_left_to_gdal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row of tiles larger than the budget is not held in memory: GDAL writes the file."""
    from geotessera.export import lzw_tiles

    monkeypatch.setattr(lzw_tiles, "TILE_ROW_BUDGET", 256 * 256 * 128 * 4)  # one tile per row
    assert lzw_tiles.usable(256, 128) and not lzw_tiles.usable(257, 128)
    q, s, grid = _tile(h=40, w=300)
    monkeypatch.setattr(lzw_tiles, "fill_lzw_tiles", lambda *a, **k: pytest.fail("encoder used"))
    out = write_embedding_geotiff(tmp_path / "t.tif", q, s, grid)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), dequantize_embedding(q, s))


@pytest.mark.parametrize(
    "strips, message",
    [
        ([(10, 10)], "does not follow row 0"),  # a gap at the top
        ([(0, 20), (10, 30)], "does not follow row 20"),  # overlap
        ([(0, 20)], "ended at row 20 of 40"),  # rows missing at the end
    ],
)
def test_fast_writer_refuses_strips_out_of_order(
    tmp_path: Path, strips: list[tuple[int, int]], message: str
) -> None:
    from geotessera.export import write_embedding_strips

    q, s, grid = _tile(h=40, w=30)
    parts = ((r0, q[r0:r1], s[r0:r1]) for r0, r1 in strips)
    with pytest.raises(OutputError, match=message):
        write_embedding_strips(tmp_path / "t.tif", grid, 128, parts)
    assert list(tmp_path.iterdir()) == []


def test_a_header_the_encoder_cannot_fill_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geotessera.export import tile_index

    def refuse(f: object) -> object:
        raise tile_index.TiffLayoutError("not a tiled TIFF (no TileOffsets/TileByteCounts)")

    monkeypatch.setattr(tile_index, "_read_tile_arrays", refuse)
    q, s, grid = _tile(h=40, w=30)
    with pytest.raises(OutputError, match=r"t\.tif: not a tiled TIFF"):
        write_embedding_geotiff(tmp_path / "t.tif", q, s, grid)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_append_does_not_encode_the_queued_tiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or Ctrl-C) while a row of tiles waits: the error comes at once, as a disk
    full OutputError with no file left, without encoding the rest of the row first."""
    import errno
    import time

    from geotessera.export import lzw_tiles, tile_index

    encoded: list[int] = []
    at_failure: list[int] = []
    real = lzw_tiles.encode_quantized_tile

    def counted(*args: Any, **kwargs: Any) -> tuple[bytes, int]:
        encoded.append(1)
        if len(encoded) > 1:
            time.sleep(0.1)  # a tile takes a while: the queue is still full when the disk fills
        return real(*args, **kwargs)

    def full(self: object, data: bytes) -> None:
        at_failure.append(len(encoded))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lzw_tiles, "encode_quantized_tile", counted)
    monkeypatch.setattr(tile_index.TileAppender, "append", full)
    q, s, grid = _tile(h=16, w=256 * 12)
    with pytest.raises(OutputError, match="disk full"):
        write_embedding_geotiff(tmp_path / "t.tif", q, s, grid, bands=[0], threads=1)
    assert list(tmp_path.iterdir()) == []
    # the tile being encoded when the disk filled may finish; the rest of the row is dropped
    assert len(encoded) <= at_failure[0] + 2 < 12, f"{len(encoded)} of the row's 12 tiles encoded"


@pytest.mark.parametrize("strip_rows", [256, 512])
def test_a_source_refilling_one_buffer_per_strip_writes_its_own_values(
    tmp_path: Path, strip_rows: int
) -> None:
    """write_embedding_strips' source may refill the same arrays for each strip (a reader's
    readinto): whole rows of tiles still being encoded when the next strip is asked for must
    not be read from the refilled buffer."""
    from geotessera.export import write_embedding_strips

    q, s, grid = _tile(h=768, w=256 * 6)

    def refilled() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        qb = np.empty((strip_rows, *q.shape[1:]), np.int8)
        sb = np.empty((strip_rows, *s.shape[1:]), np.float32)
        for r0 in range(0, q.shape[0], strip_rows):
            n = min(strip_rows, q.shape[0] - r0)
            qb[:n], sb[:n] = q[r0 : r0 + n], s[r0 : r0 + n]
            yield r0, qb[:n], sb[:n]

    out = write_embedding_strips(tmp_path / "t.tif", grid, 128, refilled(), bands=[0, 77], threads=1)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read().transpose(1, 2, 0), dequantize_embedding(q, s, bands=[0, 77]))
