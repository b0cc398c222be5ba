"""The reader's whole API (issue 13) on stores built by ``zarr build``, with and without depth
copies and a preview pyramid: depths, patches across the 6 E seam and south of the equator
checked pixel for pixel against the tiles, probe statuses at known pixels, quantised regions,
the ``.tessera`` accessor, GeoTIFF export, the preview and the web map cut from it; and every
method giving the same answers over https and s3:// as on the local disk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import zarr
from click.testing import CliRunner
from pyproj import Transformer

from geotessera.config import Settings
from geotessera.datasets import DatasetId
from geotessera.errors import InvalidInputError, NotCoveredError
from geotessera.grid import Cell, utm_zones
from geotessera.sample.build import build_store
from geotessera.sample.serve import SampleServer
from geotessera.store import GeoTesseraZarr, build_zarr
from geotessera.store.write.preview import Colours
from geotessera.store.write.sources import tile_files
from geotessera.store.write.tiles import TileInput, tile_inputs
from geotessera.tiles import dequantize_embedding, load_tile_arrays
from support.fault_server import FaultServer
from support.tls import self_signed

DS = DatasetId.parse("v1")
BBOX = (5.8, 51.9, 6.2, 52.1)  # straddles the zone 31/32 seam at 6 E (the sample adds a southern tile)
YEARS = (2023, 2024)
SOUTH = (-58.45, -34.55)  # the sample's tile in zone 21, south of the equator

pytestmark = pytest.mark.xdist_group("zarr_reader_api")  # one worker builds the stores (make test: loadgroup)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api_sample")
    build_store(root, bbox=BBOX, years=YEARS, versions=("v1",), pixel_size_m=100.0)
    return root


@pytest.fixture(scope="module")
def plain_store(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api_plain") / "v1.zarr"
    build_zarr(sample, path, dataset=DS, workers=2)
    return path


@pytest.fixture(scope="module")
def rich_store(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by the CLI with depth copies and a preview pyramid of 2023."""
    from geotessera.cli.zarr_store import command

    path = tmp_path_factory.mktemp("api_rich") / "v1.zarr"
    args = ["build", str(sample), str(path), "--depths", "4,16", "--preview", "2023", "--workers", "2"]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    assert "preview of 2023: 10 levels" in result.output
    return path


@pytest.fixture(scope="module")
def tiles(sample: Path) -> list[TileInput]:
    files = tile_files(
        sample, DS, years=None, zones=None, download_dir=sample / "unused", settings=Settings()
    )
    return tile_inputs(files)


@pytest.fixture(scope="module")
def rich(rich_store: Path) -> Iterator[GeoTesseraZarr]:
    with GeoTesseraZarr(rich_store) as gz:
        yield gz


@pytest.fixture(scope="module")
def plain(plain_store: Path) -> Iterator[GeoTesseraZarr]:
    with GeoTesseraZarr(plain_store) as gz:
        yield gz


def _tile_value(tiles: list[TileInput], lon: float, lat: float, year: int, zone: int) -> np.ndarray | None:
    """The tile value (128,) of the pixel containing (lon, lat), from the tile of that point's
    0.1 degree cell when that tile lives in ``zone`` (None otherwise)."""
    cell = Cell.from_point(lon, lat)
    tile = next((t for t in tiles if t.cell == cell and t.year == year), None)
    if tile is None or tile.zone != zone:
        return None
    g = tile.grid
    x, y = Transformer.from_crs(4326, g.epsg, always_xy=True).transform(lon, lat)
    col = int(np.floor((x - g.transform.c) / g.res))
    row = int(np.floor((g.transform.f - y) / g.res))
    ta = load_tile_arrays(tile.embedding_path, tile.scales_path)
    return np.asarray(dequantize_embedding(ta.quantized, ta.scales)[row, col])


def _centres(data: np.ndarray, transform: Any) -> tuple[np.ndarray, np.ndarray]:
    h, w = data.shape[:2]
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return transform @ (cols.ravel(), rows.ravel())


# --- store layout, properties, depths ---------------------------------------------------------


def test_build_writes_depths_and_preview(rich_store: Path, plain_store: Path) -> None:
    root = zarr.open_group(rich_store, mode="r")
    assert list(root.attrs["geoemb:depths"]) == [4, 16]
    g = root["utm31"]
    full, d4, d16 = g["embeddings"], g["embeddings_d4"], g["embeddings_d16"]
    assert d4.shape == (*full.shape[:1], 4, *full.shape[2:]) and d4.chunks == (1, 4, 128, 128)
    assert d16.chunks == (1, 16, 64, 64) and d16.shards == (1, 16, 4096, 4096)
    pyr = root["global_rgb"]
    assert pyr.attrs["proj:code"] == "EPSG:4326" and len(pyr.attrs["multiscales"]["layout"]) == 10
    lv0, lv9 = pyr["0/rgb"], pyr["9/rgb"]
    assert lv0.shape == (1_800_000, 3_600_000, 4) and lv0.chunks == (512, 512, 4) and lv0.dtype == np.uint8
    assert lv9.shape == (3516, 7032, 4)
    assert pyr.attrs["tessera:preview"]["year"] == 2023
    assert "global_rgb" not in zarr.open_group(plain_store, mode="r")
    assert "geoemb:depths" not in zarr.open_group(plain_store, mode="r").attrs


def test_store_attributes_as_properties(rich: GeoTesseraZarr, plain: GeoTesseraZarr) -> None:
    assert rich.depths == {4: "embeddings_d4", 16: "embeddings_d16"} and plain.depths == {}
    assert rich.n_bands == 128 and rich.model_version == "1.0" and rich.dataset == DS
    assert rich.build_version is not None and rich.build_version.startswith("geotessera ")
    assert rich.crs == {21: "EPSG:32621", 31: "EPSG:32631", 32: "EPSG:32632"}
    assert rich.years == list(YEARS)


def test_depth_on_every_reader_equals_the_leading_bands(rich: GeoTesseraZarr, tmp_path: Path) -> None:
    pts = np.array([[5.95, 52.0], [6.01, 52.04], SOUTH, [5.75, 52.0]])
    bbox = (5.9, 51.95, 6.1, 52.05)
    full_pts = rich.sample_points(pts, 2023)
    full_region, t, crs = rich.read_region(bbox, 2023)
    q_full, s_full, _, _ = rich.read_region_quantized(bbox, 2023)
    full_patch = rich.read_patch(6.0, 52.0, 2023, 24)[0]
    for d in (4, 16):
        np.testing.assert_array_equal(rich.sample_points(pts, 2023, depth=d), full_pts[:, :d])
        vec, status = rich.probe(*pts[0], 2023, depth=d)
        assert status == "valid" and vec is not None and vec.shape == (d,)
        np.testing.assert_array_equal(rich.sample_at(*pts[0], 2023, depth=d), full_pts[0, :d])
        region, t_d, crs_d = rich.read_region(bbox, 2023, depth=d)
        assert t_d == t and crs_d == crs
        np.testing.assert_array_equal(region, full_region[..., :d])
        q, s, _, _ = rich.read_region_quantized(bbox, 2023, depth=d)
        np.testing.assert_array_equal(q, q_full[..., :d])
        np.testing.assert_array_equal(s, s_full)
        strips = list(rich.iter_region(bbox, 2023, depth=d, strip_rows=100))
        np.testing.assert_array_equal(np.concatenate([st.data for st in strips]), full_region[..., :d])
        np.testing.assert_array_equal(rich.read_patch(6.0, 52.0, 2023, 24, depth=d)[0], full_patch[..., :d])
        np.testing.assert_array_equal(
            rich.read_patches(pts[:2], 2023, 24, depth=d), rich.read_patches(pts[:2], 2023, 24)[..., :d]
        )
        ds: Any = rich.open_zone(zone=31)
        x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(5.95, 52.0)
        np.testing.assert_array_equal(ds.tessera.sample(x, y, 2023, depth=d), full_pts[0, :d])
    np.testing.assert_array_equal(rich.sample_points(pts, 2023, depth=128), full_pts)
    full_tifs = rich.export_geotiffs(bbox, 2023, tmp_path / "full", bands=list(range(16)))
    d16_tifs = rich.export_geotiffs(bbox, 2023, tmp_path / "d16", depth=16)
    for a, b in zip(full_tifs, d16_tifs, strict=True):
        with rasterio.open(a) as fa, rasterio.open(b) as fb:
            assert fb.count == 16
            np.testing.assert_array_equal(fb.read(), fa.read())
    with pytest.raises(ValueError, match=r"4, 16"):
        rich.sample_points(pts, 2023, depth=8)
    with pytest.raises(ValueError, match="depth"):
        rich.read_region(bbox, 2023, depth=0)


def test_a_store_without_depths_refuses_depth(plain: GeoTesseraZarr) -> None:
    with pytest.raises(ValueError, match="depth"):
        plain.sample_points([(5.95, 52.0)], 2023, depth=4)
    with pytest.raises(ValueError, match="depth"):
        plain.read_patch(5.95, 52.0, 2023, 8, depth=16)


def test_iter_region_strips_end_on_inner_chunk_rows(rich: GeoTesseraZarr) -> None:
    bbox = (5.81, 51.91, 5.99, 52.09)  # zone 31 only
    for depth, chunk_rows in ((None, 32), (16, 64), (4, 128)):
        whole, t, _ = rich.read_region(bbox, 2023, depth=depth)
        zone = rich.zone(31)
        assert zone is not None
        first = round((zone.info.y0 - t.f) / zone.info.res)  # the region's first row on the zone grid
        for strip_rows in (chunk_rows, 2 * chunk_rows + 5):
            strips = list(rich.iter_region(bbox, 2023, depth=depth, strip_rows=strip_rows))
            assert len(strips) > 1 or strip_rows >= len(whole)
            ends = [first + st.row + len(st.data) for st in strips[:-1]]
            assert all(e % chunk_rows == 0 for e in ends), (depth, strip_rows, ends)
            assert all(len(st.data) <= strip_rows for st in strips)
            np.testing.assert_array_equal(np.concatenate([st.data for st in strips]), whole)


# --- patches ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "merged"),
    [
        (5.95, 52.0, False),  # inside zone 31
        (6.0, 52.0, True),  # on the seam
        (6.012, 52.04, True),  # just east of it: the patch reaches into zone 31
        (6.15, 51.95, False),  # inside zone 32
        (*SOUTH, False),  # south of the equator
    ],
)
def test_patch_equals_the_tiles_pixel_for_pixel(
    rich: GeoTesseraZarr, tiles: list[TileInput], lon: float, lat: float, merged: bool
) -> None:
    size = 33
    patch, transform, crs = rich.read_patch(lon, lat, 2024, size)
    assert patch.shape == (size, size, 128) and patch.dtype == np.float32
    assert abs(transform.a - 100.0) < 1e-9 and abs(transform.e + 100.0) < 1e-9
    px, py = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    col, row = ~transform * (px, py)
    assert int(col) == size // 2 and int(row) == size // 2  # the point is in the centre pixel
    assert ("Transverse Mercator" in crs.name) == merged
    if not merged:
        assert crs.to_epsg() in (32631, 32632, 32721)
    x, y = _centres(patch, transform)
    plon, plat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    owner = utm_zones(np.floor(np.asarray(plon) * 10) / 10 + 0.05)
    flat = patch.reshape(-1, 128)
    checked = 0
    for i in range(len(flat)):
        z = int(owner[i])
        zx, zy = Transformer.from_crs(4326, 32600 + z, always_xy=True).transform(plon[i], plat[i])
        # the zone pixel containing this pixel's centre, and that pixel's own centre
        cx, cy = (np.floor(zx / 100.0) + 0.5) * 100.0, (np.floor(zy / 100.0) + 0.5) * 100.0
        clon, clat = Transformer.from_crs(32600 + z, 4326, always_xy=True).transform(cx, cy)
        want = _tile_value(tiles, clon, clat, 2024, z)
        if want is None:
            continue  # the zone pixel lies in the other zone's tile: filled from a neighbour
        np.testing.assert_array_equal(flat[i], want, err_msg=f"pixel {divmod(i, size)} of ({lon}, {lat})")
        checked += 1
    assert checked >= 0.9 * size * size
    assert np.isfinite(flat).all(axis=1).mean() > 0.5


def test_read_patches_equal_a_loop_of_read_patch(rich: GeoTesseraZarr) -> None:
    near = [[5.9502, 52.0003], [5.95, 52.0], [5.9488, 51.9991], [5.953, 52.002]]  # share chunks
    pts = np.array([[5.95, 52.0], [6.0, 52.0], [6.012, 52.04], SOUTH, *near, [5.75, 52.0], [100.0, 10.0]])
    batch = rich.read_patches(pts, 2023, 16)
    assert batch.shape == (len(pts), 16, 16, 128) and batch.dtype == np.float32
    for i, (lon, lat) in enumerate(pts):
        np.testing.assert_array_equal(batch[i], rich.read_patch(lon, lat, 2023, 16)[0], err_msg=str(i))
    assert np.isnan(batch[-1]).all()  # no zone of the store there
    out = np.empty_like(batch)
    assert rich.read_patches(pts, 2023, 16, out=out) is out
    np.testing.assert_array_equal(out, batch)
    forced = rich.read_patches(pts[:6], 2023, 12, dst_crs="EPSG:3035", resampling="bilinear")
    for i, (lon, lat) in enumerate(pts[:6]):
        one, _, crs = rich.read_patch(lon, lat, 2023, 12, dst_crs="EPSG:3035", resampling="bilinear")
        assert crs.to_epsg() == 3035
        np.testing.assert_array_equal(forced[i], one)
    with pytest.raises(InvalidInputError, match="projected CRS in metres"):
        rich.read_patch(5.95, 52.0, 2023, 8, dst_crs="EPSG:4326")
    with pytest.raises(InvalidInputError, match="size_px"):
        rich.read_patches(pts, 2023, 0)


# --- points -----------------------------------------------------------------------------------


def _pixel_centre(rich: GeoTesseraZarr, zone: int, row: int, col: int) -> tuple[float, float]:
    zz = rich.zone(zone)
    assert zz is not None
    x = zz.info.x0 + (col + 0.5) * zz.info.res
    y = zz.info.y0 - (row + 0.5) * zz.info.res
    lon, lat = Transformer.from_crs(32600 + zone, 4326, always_xy=True).transform(x, y)
    return float(lon), float(lat)


def test_probe_statuses_at_known_pixels(rich_store: Path, rich: GeoTesseraZarr) -> None:
    """Pixels picked from the stored scales: valid, water (NaN), never written (+inf) next to a
    valid pixel (repaired by search_px=1, not by 0), +inf with no valid pixel near, outside."""
    scales = zarr.open_group(rich_store, mode="r")["utm31/scales"]
    zz = rich.zone(31)
    assert zz is not None
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform([5.8, 6.0], [52.1, 51.9])
    r0, r1 = int((zz.info.y0 - y[0]) // 100) - 3, int((zz.info.y0 - y[1]) // 100) + 3
    c0, c1 = int((x[0] - zz.info.x0) // 100) - 3, int((x[1] - zz.info.x0) // 100) + 3
    s = np.asarray(scales[0, r0:r1, c0:c1])
    valid = np.isfinite(s)
    pad = np.pad(valid, 2)
    near1 = np.zeros_like(valid)
    near2 = np.zeros_like(valid)
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            shifted = pad[2 + dr : 2 + dr + s.shape[0], 2 + dc : 2 + dc + s.shape[1]]
            if max(abs(dr), abs(dc)) <= 1:
                near1 |= shifted
            near2 |= shifted
    pick = {
        "valid": np.argwhere(valid)[len(np.argwhere(valid)) // 3],
        "water": np.argwhere(np.isnan(s))[0],
        "hole": np.argwhere(np.isposinf(s) & near1)[0],
        "far": np.argwhere(np.isposinf(s) & ~near1 & near2)[0],
        "none": np.argwhere(np.isposinf(s) & ~near2)[0],
    }
    lonlat = {k: _pixel_centre(rich, 31, r0 + int(r), c0 + int(c)) for k, (r, c) in pick.items()}
    vec, status = rich.probe(*lonlat["valid"], 2023)
    r, c = pick["valid"]
    q = np.asarray(zarr.open_group(rich_store, mode="r")["utm31/embeddings"][0, :, r0 + r, c0 + c])
    assert status == "valid" and vec is not None
    np.testing.assert_array_equal(vec, q.astype(np.float32) * s[r, c])
    assert rich.probe(*lonlat["water"], 2023) == (None, "water")
    assert rich.probe(*lonlat["water"], 2023, search_px=3) == (None, "water")  # never searched past
    assert rich.probe(*lonlat["hole"], 2023, search_px=0) == (None, "nodata")
    vec, status = rich.probe(*lonlat["hole"], 2023)  # default search_px=1 repairs it
    assert status == "valid" and vec is not None
    r, c = pick["hole"]
    window = [(r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if valid[r + dr, c + dc]]
    emb = zarr.open_group(rich_store, mode="r")["utm31/embeddings"]
    candidates = [np.asarray(emb[0, :, r0 + a, c0 + b]).astype(np.float32) * s[a, b] for a, b in window]
    assert any(np.array_equal(vec, cand) for cand in candidates)
    assert rich.probe(*lonlat["far"], 2023)[1] == "nodata"
    assert rich.probe(*lonlat["far"], 2023, search_px=2)[1] == "valid"
    assert rich.probe(*lonlat["none"], 2023, search_px=2) == (None, "nodata")
    assert rich.probe(100.0, 10.0, 2023) == (None, "outside")
    assert np.isnan(rich.sample_at(*lonlat["water"], 2023)).all()
    np.testing.assert_array_equal(rich.sample_at(*lonlat["hole"], 2023), vec)
    pts = np.array([lonlat[k] for k in ("valid", "water", "hole", "far")] + [(100.0, 10.0)])
    _, st0 = rich.sample_points(pts, 2023, search_px=0, return_status=True)
    _, st1 = rich.sample_points(pts, 2023, return_status=True)
    assert list(st0) == ["valid", "water", "nodata", "nodata", "outside"]
    assert list(st1) == ["valid", "water", "valid", "nodata", "outside"]


def test_cross_zone_serves_points_near_the_seam_from_the_neighbour(
    sample: Path, rich: GeoTesseraZarr, tmp_path: Path
) -> None:
    """A store of zone 32 only: points just west of 6 E (zone 31's) are outside it, unless
    cross_zone looks them up in zone 32, whose tiles' rectangles reach past the seam."""
    path = tmp_path / "z32.zarr"
    build_zarr(sample, path, dataset=DS, zones=[32], years=[2023])
    lon = np.linspace(5.98, 5.9999, 60)
    pts = np.c_[lon, np.full_like(lon, 52.031)]
    with GeoTesseraZarr(path) as gz:
        _, own = gz.sample_points(pts, 2023, cross_zone=False, return_status=True)
        vals, both = gz.sample_points(pts, 2023, return_status=True)
        assert set(own) == {"outside"}
        assert set(both) == {"valid", "nodata"}  # nodata outranks outside
        served = np.flatnonzero(both == "valid")
        assert 3 <= len(served) < len(pts)
        ds: Any = rich.open_zone(zone=32)
        x, y = Transformer.from_crs(4326, 32632, always_xy=True).transform(lon[served], pts[served, 1])
        np.testing.assert_array_equal(vals[served], ds.tessera.sample(x, y, 2023, search_px=1))
        i = int(served[0])
        vec, status = gz.probe(*pts[i], 2023)
        assert status == "valid" and vec is not None
        np.testing.assert_array_equal(vec, vals[i])
        assert gz.probe(*pts[i], 2023, cross_zone=False) == (None, "outside")


# --- regions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bbox", [(5.81, 51.91, 5.99, 52.09), (5.91, 51.96, 6.07, 52.04)])
def test_quantized_region_times_scales_equals_read_region(rich: GeoTesseraZarr, bbox: tuple) -> None:
    data, t, crs = rich.read_region(bbox, 2023)
    q, s, t_q, crs_q = rich.read_region_quantized(bbox, 2023)
    assert q.dtype == np.int8 and s.dtype == np.float32 and q.shape == data.shape
    assert t_q == t and crs_q == crs
    np.testing.assert_array_equal(q.astype(np.float32) * s[..., None], data)
    assert np.isfinite(s).mean() > 0.5
    assert (q[~np.isfinite(s)] == 0).all()


def test_read_region_writes_into_out(rich: GeoTesseraZarr) -> None:
    bbox = (5.85, 51.95, 6.05, 52.05)
    data, _, _ = rich.read_region(bbox, 2023)
    buf = np.full(data.shape, 7.0, dtype=np.float32)
    got, _, _ = rich.read_region(bbox, 2023, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, data)
    got2, _, _ = rich.read_region(bbox, 2024, out=buf)  # the buffer reused for another year
    np.testing.assert_array_equal(got2, rich.read_region(bbox, 2024)[0])
    with pytest.raises(InvalidInputError, match="out"):
        rich.read_region(bbox, 2023, out=np.empty((3, 3, 128), dtype=np.float32))


def test_export_geotiffs_one_file_per_zone_part(rich: GeoTesseraZarr, tmp_path: Path) -> None:
    bbox = (5.95, 51.97, 6.05, 52.03)
    paths = rich.export_geotiffs(bbox, 2023, tmp_path / "out", bands=[0, 5, 127])
    assert [Path(p).name for p in paths] == ["tessera_2023_utm31.tif", "tessera_2023_utm32.tif"]
    for p in paths:
        with rasterio.open(p) as ds:
            assert ds.count == 3 and ds.dtypes[0] == "float32" and ds.tags()["TESSERA_YEAR"] == "2023"
            data = ds.read().transpose(1, 2, 0)
            x, y = _centres(data, ds.transform)
            zone = ds.crs.to_epsg() - 32600
        zone_ds: Any = rich.open_zone(zone=zone)  # the file is that zone's grid, unresampled
        want = zone_ds.tessera.sample_points(np.c_[x, y], 2023, search_px=0)[:, [0, 5, 127]]
        np.testing.assert_array_equal(data.reshape(-1, 3), want)
        assert np.isfinite(want).mean() > 0.5
    meta = json.loads((tmp_path / "out" / "tessera_metadata.json").read_text())
    assert meta["year"] == 2023 or "2023" in json.dumps(meta)


# --- the accessor -----------------------------------------------------------------------------


def test_accessor_on_dask_dataset_equals_the_reader(rich: GeoTesseraZarr) -> None:
    import dask.array as da

    ds: Any = rich.open_zone(zone=31)
    assert isinstance(ds.embeddings.data, da.Array)
    assert ds.tessera.crs.to_epsg() == 32631 and ds.tessera.pixel_size == 100.0
    assert ds.tessera.years == list(YEARS) and ds.tessera.n_bands == 128
    bbox = (5.85, 51.95, 5.99, 52.05)
    data, t, _ = rich.read_region(bbox, 2024)
    zz = rich.zone(31)
    assert zz is not None
    r0 = round((zz.info.y0 - t.f) / 100.0)
    c0 = round((t.c - zz.info.x0) / 100.0)
    h, w = data.shape[:2]
    lazy = ds.tessera.dequantise()
    assert isinstance(lazy.data, da.Array)
    got = lazy.isel(time=1, y=slice(r0, r0 + h), x=slice(c0, c0 + w)).values
    np.testing.assert_array_equal(got, data)
    part = ds.isel(time=1, y=slice(r0, r0 + h), x=slice(c0, c0 + w))
    np.testing.assert_array_equal(ds.tessera.dequantise(part.embeddings.values, part.scales.values), data)
    x, y = _centres(data, t)
    lon, lat = Transformer.from_crs(32631, 4326, always_xy=True).transform(x, y)
    pts = np.c_[lon, lat]
    exp, exp_status = rich.sample_points(pts, 2024, return_status=True, cross_zone=False)
    xy = np.c_[x, y]
    np.testing.assert_array_equal(ds.tessera.sample(xy[:, 0], xy[:, 1], 2024), exp)
    got_v, got_s = ds.tessera.sample_points(xy, 2024, return_status=True)
    np.testing.assert_array_equal(got_v, exp)
    assert list(got_s) == list(exp_status)
    i = int(np.flatnonzero(exp_status == "valid")[0])
    vec, status = ds.tessera.probe(*xy[i], 2024)
    assert status == "valid" and vec is not None
    np.testing.assert_array_equal(vec, exp[i])


# --- the preview --------------------------------------------------------------------------------


def test_preview_colours_the_embeddings(rich: GeoTesseraZarr, plain: GeoTesseraZarr) -> None:
    from geotessera.store.read.preview import read_preview

    info = rich.preview_info
    assert info is not None and info["year"] == 2023 and info["levels"] == 10
    w, s, e, n = info["bbox"]
    assert w <= -58.45 and e >= 6.2 and s <= -34.55 and n >= 52.1
    colours = Colours(
        np.array(info["pca_mean"], np.float32),
        np.array(info["pca_components"], np.float32),
        *np.array(info["stretch"], np.float32).T,
    )
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(5.85, 6.15, 300), rng.uniform(51.92, 52.08, 300)
    vals, status = rich.sample_points(np.c_[lon, lat], 2023, return_status=True, search_px=0)
    rgba, t, level = read_preview(rich, BBOX, 0)
    assert level == 0 and rgba.shape == (2000, 4000, 4)
    c, r = ~t * (lon, lat)
    px = rgba[r.astype(int), c.astype(int)]
    ok = status == "valid"
    diff = np.abs(px[ok, :3].astype(np.float32) - colours.rgb(vals[ok]))
    assert np.median(diff) <= 1 and (diff.max(axis=1) <= 1).mean() > 0.8  # edges blend neighbours
    assert (px[ok, 3] > 0).all() and (px[~ok, 3] == 0).mean() > 0.8
    pic = rich.preview(BBOX)  # level chosen: the box at most 2048 px across
    assert pic.shape == (1000, 2000, 4) and pic.dtype == np.uint8
    coarse = rich.preview(BBOX, level=3)
    assert coarse.shape == (250, 500, 4) and (coarse[..., 3] > 0).mean() > 0.5
    assert (rich.preview((100.0, 10.0, 100.1, 10.1))[..., 3] == 0).all()
    with pytest.raises(InvalidInputError, match="level"):
        rich.preview(BBOX, level=10)
    with pytest.raises(NotCoveredError, match="--preview"):
        plain.preview(BBOX)
    assert plain.preview_info is None


def test_webmap_serves_tiles_cut_from_the_pyramid(rich_store: Path, tmp_path: Path) -> None:
    from geotessera.cli import cli as main

    out = tmp_path / "web"
    result = CliRunner().invoke(
        main, ["webmap", str(rich_store), "-o", str(out), "--min-zoom", "6", "--max-zoom", "7"]
    )
    assert result.exit_code == 0, result.output
    assert "preview of 2023" in result.output
    pngs = list((out / "tiles").rglob("*.png"))
    assert pngs and all(p.parts[-3] in ("6", "7") for p in pngs)
    assert (out / "index.html").is_file() and (out / "preview.tif").is_file()
    bad = CliRunner().invoke(main, ["webmap", str(rich_store.with_name("nope.zarr")) + "/"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


# --- remote stores ------------------------------------------------------------------------------


def _everything(gz: GeoTesseraZarr, out_dir: Path) -> dict[str, Any]:
    """Every reader method's result on the same inputs."""
    pts = np.array([[5.95, 52.0], [6.01, 52.04], SOUTH, [5.75, 52.0], [100.0, 10.0]])
    bbox = (5.92, 51.97, 6.04, 52.03)
    ds: Any = gz.open_zone(zone=31)
    x, y = Transformer.from_crs(4326, 32631, always_xy=True).transform(5.95, 52.0)
    return {
        "props": (gz.depths, gz.n_bands, gz.model_version, gz.build_version, gz.crs, gz.years),
        "sample_points": gz.sample_points(pts, 2023, search_px=2, cross_zone=False),
        "sample_points_d4": gz.sample_points(pts, 2024, depth=4),
        "probe": [gz.probe(*p, 2023) for p in pts],
        "sample_at": gz.sample_at(6.01, 52.04, 2023, depth=16),
        "read_region": gz.read_region(bbox, 2023, depth=16)[0],
        "quantized": gz.read_region_quantized(bbox, 2024)[:2],
        "iter_region": [st.data for st in gz.iter_region(bbox, 2023, strip_rows=64)],
        "read_patch": gz.read_patch(6.0, 52.0, 2023, 16)[0],
        "read_patches": gz.read_patches(pts, 2024, 16, depth=4),
        "export": [rasterio.open(p).read() for p in gz.export_geotiffs(bbox, 2023, out_dir, bands=[1, 2])],
        "preview": gz.preview(BBOX, level=2),
        "accessor": ds.tessera.sample(x, y, 2023),
        "dequantise": ds.tessera.dequantise(depth=4).isel(time=0, y=slice(45000, 45050)).values,
    }


def _assert_same(a: Any, b: Any, key: str) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=key)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), key
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y, key)
    else:
        assert a == b, key


@pytest.fixture(scope="module")
def local_results(rich: GeoTesseraZarr, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _everything(rich, tmp_path_factory.mktemp("export_local"))


def test_every_method_over_https(
    rich_store: Path, local_results: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, ctx = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    objects = {
        f"stores/v1.zarr/{p.relative_to(rich_store).as_posix()}": p.read_bytes()
        for p in rich_store.rglob("*")
        if p.is_file() and ".receipts" not in p.parts
    }
    with FaultServer(objects, tls=ctx) as server:
        url = f"{server.url}/stores/v1.zarr"
        assert url.startswith("https://")
        with GeoTesseraZarr(url, cache_dir=tmp_path / "cache") as gz:
            got = _everything(gz, tmp_path / "export")
        for key, want in local_results.items():
            _assert_same(got[key], want, key)
        web = CliRunner().invoke(
            __import__("geotessera.cli", fromlist=["cli"]).cli,
            ["webmap", url, "-o", str(tmp_path / "web"), "--min-zoom", "6", "--max-zoom", "6"],
        )
        assert web.exit_code == 0, web.output
        assert list((tmp_path / "web" / "tiles").rglob("*.png"))


def test_every_method_over_s3(rich_store: Path, local_results: dict[str, Any], tmp_path: Path) -> None:
    server = SampleServer(None, port=0, bucket="api-test")
    try:
        server.start()
        server.add_tree(rich_store, "zarr/v1.zarr")
        with GeoTesseraZarr("s3://api-test/zarr/v1.zarr", endpoint_url=server.endpoint_url) as gz:
            got = _everything(gz, tmp_path / "export")
        for key, want in local_results.items():
            _assert_same(got[key], want, key)
    finally:
        server.stop()
