"""`geotessera visualize` on tiles downloaded from the served sample store, judged by its ground truth.

The 12 Cambridge tiles of 2024 are downloaded through the real S3 path (NPY and GeoTIFF),
drawn, and the mosaic is read back at the Web Mercator position of ground-truth pixels:
land-cover classes get distinct colours, water is transparent, tile borders show no seam.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import Transformer
from rasterio.warp import transform_bounds

from geotessera.cli import cli
from geotessera.sample.serve import SampleServer

BBOX = "0.0,52.0,0.4,52.3"
YEAR = 2024
LAND = (1, 2, 3, 4)


def _run(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture(scope="module")
def mosaics(s3_endpoint: SampleServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fmt -> visualize output of the same 12 tiles downloaded as npy and as tiff."""
    work = tmp_path_factory.mktemp("visualize")
    out = {}
    for fmt in ("npy", "tiff"):
        dl = work / f"dl_{fmt}"
        _run(
            "download",
            "--bbox",
            BBOX,
            "--year",
            str(YEAR),
            "-f",
            fmt,
            "-o",
            str(dl),
            "--base-url",
            s3_endpoint.base_url,
            "--cache-dir",
            str(work / "cache"),
        )
        out[fmt] = work / f"{fmt}_mosaic.tif"
        text = _run("visualize", str(dl), str(out[fmt]))
        assert str(out[fmt]) in text
    return out


def _erode(mask: np.ndarray, n: int = 2) -> np.ndarray:
    m = mask.copy()
    for _ in range(n):
        core = m.copy()
        core[1:] &= m[:-1]
        core[:-1] &= m[1:]
        core[:, 1:] &= m[:, :-1]
        core[:, :-1] &= m[:, 1:]
        m = core
    return m


def _truth(store: Path) -> list[tuple[np.ndarray, object, object]]:
    """(classes (H, W), transform, crs) of the 12 Cambridge tiles."""
    out = []
    for p in sorted((store / "ground_truth" / str(YEAR)).glob("grid_0.*_52.*_classes.tif")):
        with rasterio.open(p) as ds:
            out.append((ds.read(1), ds.transform, ds.crs))
    assert len(out) == 12
    return out


def _colours_at(mosaic: Path, truth: list, classes: tuple[int, ...]) -> dict[int, np.ndarray]:
    """class -> (N, 4) RGBA of the mosaic at the centres of the class's interior pixels."""
    with rasterio.open(mosaic) as ds:
        rgba = ds.read()
        inv, crs = ~ds.transform, ds.crs
    got: dict[int, list[np.ndarray]] = {c: [] for c in classes}
    for cls_map, transform, tcrs in truth:
        to_merc = Transformer.from_crs(tcrs, crs, always_xy=True)
        for c in classes:
            rows, cols = np.nonzero(_erode(cls_map == c))
            if rows.size == 0:
                continue
            x, y = transform * (cols + 0.5, rows + 0.5)
            mx, my = to_merc.transform(x, y)
            mc, mr = inv * (np.asarray(mx), np.asarray(my))
            got[c].append(rgba[:, mr.astype(int), mc.astype(int)].T)
    return {c: np.concatenate(v) for c, v in got.items() if v}


@pytest.mark.parametrize("fmt", ["npy", "tiff"])
def test_classes_get_distinct_colours_and_water_is_transparent(
    mosaics: dict[str, Path], tiny_store: Path, fmt: str
) -> None:
    colours = _colours_at(mosaics[fmt], _truth(tiny_store), (0, *LAND))
    for c in LAND:
        assert (colours[c][:, 3] == 255).mean() > 0.99, f"class {c} pixels must be drawn"
    assert (colours[0][:, 3] == 0).mean() > 0.9, "water must be transparent"
    rgb = {c: colours[c][colours[c][:, 3] == 255, :3].astype(float) for c in LAND}
    means = {c: v.mean(axis=0) for c, v in rgb.items()}
    within = np.mean([np.linalg.norm(v - means[c], axis=1).mean() for c, v in rgb.items()])
    between = np.mean([np.linalg.norm(means[a] - means[b]) for a, b in itertools.combinations(LAND, 2)])
    assert between > 2.0 * within, (between, within)


def _jumps(rgb: np.ndarray, valid: np.ndarray, axis: int) -> np.ndarray:
    """Mean colour change between neighbouring columns (axis=1) or rows (axis=0), where both are data."""
    d = np.abs(np.diff(rgb.astype(float), axis=axis + 1)).sum(axis=0)
    both = valid[:, 1:] & valid[:, :-1] if axis == 1 else valid[1:] & valid[:-1]
    d = np.where(both, d, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows or columns without data
        return np.nanmean(d, axis=1 - axis)


def _worst_seam(rgb: np.ndarray, valid: np.ndarray) -> float:
    """Largest neighbour-to-neighbour change over the typical one, along both axes."""
    out = 0.0
    for axis in (0, 1):
        j = _jumps(rgb, valid, axis)
        j = j[np.isfinite(j)]
        out = max(out, float(j.max() / np.median(j)))
    return out


def test_no_seam_at_tile_borders(mosaics: dict[str, Path]) -> None:
    with rasterio.open(mosaics["npy"]) as ds:
        rgba = ds.read()
    rgb, valid = rgba[:3], rgba[3] == 255
    assert _worst_seam(rgb, valid) < 2.0  # natural variation of this content reaches about 1.65
    # the measure sees a seam: shift the colours of the right half by a quarter of the range
    seamed = rgb.astype(int)
    seamed[:, :, seamed.shape[2] // 2 :] = (seamed[:, :, seamed.shape[2] // 2 :] + 64) % 256
    assert _worst_seam(seamed, valid) > 2.5


def test_the_mosaic_is_a_web_mercator_rgba_cog_where_the_tiles_are(
    mosaics: dict[str, Path], tiny_store: Path
) -> None:
    with rasterio.open(mosaics["npy"]) as ds:
        assert ds.crs.to_epsg() == 3857 and ds.count == 4 and ds.dtypes == ("uint8",) * 4
        assert ds.colorinterp[3].name == "alpha" and ds.overviews(1)
        assert ds.profile["compress"] == "deflate" and ds.profile["tiled"]
        t = ds.transform
        assert t.a == -t.e and abs(t.c / t.a - round(t.c / t.a)) < 1e-6  # square pixels, snapped origin
        bounds = ds.bounds
        tags = ds.tags()
    assert tags["PCA_COMPONENTS"] == "3" and tags["GEOTESSERA_TILES"] == "12"
    w, s, e, n = transform_bounds("EPSG:4326", "EPSG:3857", 0.0, 52.0, 0.4, 52.3)
    assert (
        bounds.left <= w + 200
        and bounds.right >= e - 200
        and bounds.bottom <= s + 200
        and bounds.top >= n - 200
    )
    assert bounds.left > w - 2000 and bounds.right < e + 2000  # no more than the tiles' own overlap
    png = mosaics["npy"].with_suffix(".png")
    with rasterio.open(png) as q:
        assert q.count == 4 and max(q.width, q.height) <= 2048


def test_a_tile_set_and_its_geotiff_export_give_the_same_colours(mosaics: dict[str, Path]) -> None:
    """Sampling reads the same pixels of an NPY tile and of its GeoTIFF export (random 256-pixel
    blocks, uniformly within each), so the PCA and the stretch are the same and so are the
    colours; only float rounding of the projection may move a channel by one level."""
    with rasterio.open(mosaics["npy"]) as a, rasterio.open(mosaics["tiff"]) as b:
        x, y = a.read().astype(int), b.read().astype(int)
    np.testing.assert_array_equal(x[3], y[3])
    valid = x[3] == 255
    diff = np.abs(x[:3] - y[:3]).max(axis=0)[valid]
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99, (diff.max(), (diff == 0).mean())
