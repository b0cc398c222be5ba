"""The published helpers: bounding boxes, GeoTIFF summaries, progress callbacks, missing extras."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geotessera.errors import InvalidInputError, MissingExtraError
from geotessera.progress import ItemDone, PlanReady
from geotessera.visualization import (
    analyze_geotiff_coverage,
    calculate_bbox_from_file,
    calculate_bbox_from_points,
    create_pca_mosaic,
    create_rgb_mosaic,
)
from geotessera.web import create_simple_web_viewer, prepare_mosaic_for_web


def _tiff(path: Path, x0: float, bands: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(bands, 50, 40)).astype("float32")
    data[:, :5, :5] = np.nan  # some nodata
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=40,
        height=50,
        count=bands,
        dtype="float32",
        crs="EPSG:32631",
        transform=from_origin(x0, 5_770_000, 10, 10),
        nodata=float("nan"),
    ) as ds:
        ds.write(data)
        ds.update_tags(TESSERA_YEAR="2024", TESSERA_TILE_LON="0.15", TESSERA_TILE_LAT="52.05")
    return path


def test_bbox_from_points_lists_and_tables() -> None:
    pts = [{"lon": 0.1, "lat": 52.0}, {"lon": 0.3, "lat": 52.2}]
    assert calculate_bbox_from_points(pts) == pytest.approx((0.0, 51.9, 0.4, 52.3))
    assert calculate_bbox_from_points(
        {"lon": [0.1, 0.3], "lat": [52.0, 52.2]}, buffer_degrees=0
    ) == pytest.approx((0.1, 52.0, 0.3, 52.2))
    assert calculate_bbox_from_points([{"lon": 179.95, "lat": 89.9}]) == pytest.approx(
        (179.85, 89.8, 180.0, 90.0)
    )
    for bad in ([], [{"lon": 1}], [{"lon": 200, "lat": 0}], [{"lon": float("nan"), "lat": 0}]):
        with pytest.raises(InvalidInputError):
            calculate_bbox_from_points(bad)
    with pytest.raises(InvalidInputError, match="buffer"):
        calculate_bbox_from_points(pts, buffer_degrees=-1)


def test_bbox_from_a_projected_region_file(tmp_path: Path) -> None:
    f = tmp_path / "r.geojson"
    f.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [[0, 6800000], [20000, 6800000], [20000, 6820000], [0, 6820000], [0, 6800000]]
                            ],
                        },
                    }
                ],
            }
        )
    )
    w, s, e, n = calculate_bbox_from_file(f)
    assert w == pytest.approx(0.0) and e == pytest.approx(0.1797, abs=1e-3) and 51.99 < s < n < 52.2


def test_geotiff_summary_reads_headers_and_skips_bad_files(tmp_path: Path) -> None:
    a = _tiff(tmp_path / "a.tif", 300_000)
    bad = tmp_path / "bad.tif"
    bad.write_text("no")
    info = analyze_geotiff_coverage([a, bad])
    assert info["total_files"] == 2 and len(info["tiles"]) == 1 and len(info["failed"]) == 1
    assert info["years"] == ["2024"] and info["band_counts"] == {6: 1} and info["crs"] == ["EPSG:32631"]
    t = info["tiles"][0]
    assert t["tile_lon"] == 0.15 and 0 < info["bounds"]["min_lon"] < info["bounds"]["max_lon"] < 1


def test_progress_callback_and_events(tmp_path: Path) -> None:
    calls: list[tuple[float, float, str]] = []
    events: list[object] = []
    tiles = [_tiff(tmp_path / f"t{i}.tif", 300_000 + 400 * i, seed=i) for i in range(3)]
    out = create_pca_mosaic(
        tiles,
        tmp_path / "m.tif",
        progress_callback=lambda c, t, s: calls.append((c, t, s)),
        progress=events.append,
    )
    assert out == str(tmp_path / "m.tif")
    assert calls and all(isinstance(s, str) and 0 <= c <= t for c, t, s in calls)
    assert calls[-1][0] == 3
    assert isinstance(events[0], PlanReady) and events[0].items == 3
    assert sum(isinstance(e, ItemDone) for e in events) == 3


def test_rgb_mosaic_bands_and_web_preparation(tmp_path: Path) -> None:
    tiles = [_tiff(tmp_path / f"t{i}.tif", 300_000 + 400 * i, seed=i) for i in range(2)]
    out = create_rgb_mosaic(tiles, tmp_path / "rgb.tif", bands=(5, 0, 2), target_crs="EPSG:32631")
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32631 and ds.count == 4 and ds.width >= 80
        assert ds.read(4)[10:40, 10:70].all() and not ds.read(4)[:3, :3].any()  # nodata corner
    with pytest.raises(InvalidInputError, match="outside"):
        create_rgb_mosaic(tiles, tmp_path / "x.tif", bands=(0, 1, 6))
    web = prepare_mosaic_for_web(out, tmp_path / "web.tif")
    with rasterio.open(web) as ds:
        assert ds.crs.to_epsg() == 3857 and ds.count == 4
    page = create_simple_web_viewer(
        tmp_path / "tiles",
        tmp_path / "index.html",
        0.15,
        52.05,
        zoom=None,
        title="<x>",
        min_zoom=8,
        max_zoom=12,
    )
    text = Path(page).read_text()
    assert "&lt;x&gt;" in text and '"zoom": null' in text and (tmp_path / "leaflet" / "leaflet.js").is_file()


def test_scattered_tiles_are_refused(tmp_path: Path) -> None:
    from geotessera.visualization.tilesets import ArrayTile

    near = ArrayTile(np.ones((20, 20, 4), np.float32), "EPSG:32631", from_origin(300_000, 5_770_000, 10, 10))
    far = ArrayTile(np.ones((20, 20, 4), np.float32), "EPSG:32637", from_origin(300_000, 1_000_000, 10, 10))
    with pytest.raises(InvalidInputError, match="scattered"):
        create_pca_mosaic([near, far], tmp_path / "m.tif")


def test_published_dicts_are_accepted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tiles = [
        {
            "path": f"t{i}",
            "data": rng.normal(size=(30, 30, 5)).astype("float32"),
            "crs": "EPSG:32631",
            "transform": from_origin(300_000 + 300 * i, 5_770_000, 10, 10),
            "bounds": None,
            "height": 30,
            "width": 30,
        }
        for i in range(2)
    ]
    with rasterio.open(create_pca_mosaic(tiles, tmp_path / "d.tif", n_components=2)) as ds:
        assert ds.count == 4 and ds.tags()["PCA_COMPONENTS"] == "2"


def test_a_missing_extra_names_the_pip_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from geotessera.visualization.coverage_draw import check_style

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.colors", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'geotessera\[viz\]'"):
        check_style(2000, 0.5, 1.0)
    monkeypatch.setitem(sys.modules, "rio_tiler", None)
    from geotessera.web import render_web_tiles

    with pytest.raises(MissingExtraError, match=r"geotessera\[viz\]"):
        render_web_tiles(tmp_path / "m.tif", tmp_path / "t")


def test_coverage_progress_reaches_its_total_and_emits_events(tiny_store: Path, tmp_path: Path) -> None:
    from geotessera.visualization import visualize_sources_coverage

    calls: list[tuple[float, float, str]] = []
    events: list[object] = []
    out = visualize_sources_coverage(
        tiny_store / "v1" / "manifest.parquet",
        tmp_path / "c.png",
        width_pixels=400,
        show_countries=False,
        progress_callback=lambda c, t, s: calls.append((c, t, s)),
        progress=events.append,
    )
    assert Path(out).is_file()
    assert calls and all(0 <= c <= t for c, t, _ in calls)
    assert calls[-1][0] == calls[-1][1]  # a callback-driven bar ends full
    plans = [e for e in events if isinstance(e, PlanReady)]
    assert len(plans) == 1 and sum(isinstance(e, ItemDone) for e in events) == plans[0].items
