"""Regions: bbox, geometry (any CRS), region files and countries -> cells."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from geotessera.countries import country_geometry, decode_topojson
from geotessera.errors import InvalidInputError
from geotessera.grid import Cell
from geotessera.regions import Region, cells_intersecting


def test_cell_aligned_polygon_selects_one_cell() -> None:
    r = Region.from_geometry(shapely.box(0.1, 52.0, 0.2, 52.1))
    assert [c.name for c in r.cells] == ["grid_0.15_52.05"]


def test_triangle_selects_cells_it_covers_not_its_bbox() -> None:
    tri = shapely.Polygon([(0.0, 52.0), (0.4, 52.0), (0.0, 52.4)])
    got = {c.name for c in Region.from_geometry(tri).cells}
    assert len(got) < 16  # the bbox would give 16
    assert "grid_0.35_52.35" not in got and "grid_0.05_52.05" in got


@settings(max_examples=40, deadline=None)
@given(st.floats(-10, 10), st.floats(-10, 10), st.floats(0.001, 0.5), st.integers(3, 9))
@example(0.0, 1.192092896e-07, 0.5, 4)  # grazes cell corners by ~1e-7 degrees: selected
@example(0.0, 1.0, 0.001, 4)  # a sub-pixel diamond around a grid vertex: GDAL alone misses a cell
def test_polygon_selection_matches_brute_force(cx: float, cy: float, r: float, n: int) -> None:
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    poly = shapely.Polygon(np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)]))
    got = {(c.ix, c.iy) for c in cells_intersecting(poly)}
    minx, miny, maxx, maxy = poly.bounds
    expected = set()
    for ix in range(int(np.floor(minx * 10)) - 1, int(np.floor(maxx * 10)) + 2):
        for iy in range(int(np.floor(miny * 10)) - 1, int(np.floor(maxy * 10)) + 2):
            # positive area, to the documented tolerance: the overlap is wider than 1e-9 degrees
            inner = shapely.box(ix / 10 + 1e-9, iy / 10 + 1e-9, (ix + 1) / 10 - 1e-9, (iy + 1) / 10 - 1e-9)
            if shapely.intersects(inner, poly):
                expected.add((ix, iy))
    assert got == expected


def test_projected_region_file(tmp_path: Path) -> None:
    tr = Transformer.from_crs(4326, 27700, always_xy=True)
    xs, ys = tr.transform([0.11, 0.19, 0.19, 0.11], [52.01, 52.01, 52.09, 52.09])
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:27700"}},
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [[*zip(xs, ys, strict=True), (xs[0], ys[0])]]},
            }
        ],
    }
    p = tmp_path / "cam.geojson"
    p.write_text(json.dumps(fc))
    assert [c.name for c in Region.from_file(p).cells] == ["grid_0.15_52.05"]


def test_geopackage_region_file(tmp_path: Path) -> None:
    import pyogrio

    p = tmp_path / "r.gpkg"
    geoms = shapely.to_wkb(np.array([shapely.box(0.12, 52.02, 0.28, 52.08)]))
    pyogrio.raw.write(p, geometry=geoms, field_data=[], fields=[], geometry_type="Polygon", crs="EPSG:4326")
    assert {c.name for c in Region.from_file(p).cells} == {"grid_0.15_52.05", "grid_0.25_52.05"}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "cannot read"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "no geometries"),
        (json.dumps({"type": "Point", "coordinates": [500000, 5700000]}), "not valid lon/lat"),
    ],
)
def test_bad_region_files(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "bad.geojson"
    p.write_text(content)
    with pytest.raises(InvalidInputError, match=match):
        Region.from_file(p)


def test_missing_region_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        Region.from_file(tmp_path / "nope.geojson")


@pytest.mark.parametrize("name", ["UK", "United Kingdom", "GB", "GBR", "gbr", "826", "Great Britain"])
def test_uk_aliases(name: str) -> None:
    geom, canonical = country_geometry(name)
    assert canonical == "United Kingdom"
    assert geom.contains(shapely.Point(0.12, 52.2))  # Cambridge
    assert not geom.contains(shapely.Point(2.35, 48.86))  # Paris


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("UK", "United Kingdom"),
        ("uk", "United Kingdom"),
        ("GB", "United Kingdom"),
        ("USA", "United States of America"),
        ("us", "United States of America"),
        ("DEU", "Germany"),
        ("250", "France"),
        ("4", "Afghanistan"),
        ("South Korea", "South Korea"),
        ("Korea, Republic of", "South Korea"),
        ("Ivory Coast", "Côte d'Ivoire"),
        ("cote d'ivoire", "Côte d'Ivoire"),
        ("Holland", "Netherlands"),
        ("Kosovo", "Kosovo"),
    ],
)
def test_iso_codes_and_aliases_work_in_the_core_install(
    name: str, canonical: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for extra in ("pycountry", "pyogrio"):  # importing a module set to None raises ImportError
        monkeypatch.setitem(sys.modules, extra, None)
    assert country_geometry(name)[1] == canonical


def test_a_territory_drawn_inside_another_country_says_so() -> None:
    with pytest.raises(InvalidInputError, match=r"ISO 638\).*part of another country"):
        country_geometry("Reunion")


def test_country_cells_follow_the_shape_not_the_bbox() -> None:
    r = Region.from_country("Luxembourg")
    b = r.bbox
    assert len(r) < round((b.max_lon - b.min_lon) * 10) * round((b.max_lat - b.min_lat) * 10)
    assert Cell.from_point(6.13, 49.61) in r.cells  # Luxembourg city


def test_antimeridian_country_is_not_a_world_band() -> None:
    r = Region.from_country("Fiji")
    assert 100 < len(r) < 1000
    assert Cell.from_point(178.44, -18.14) in r.cells  # Suva


@pytest.mark.parametrize("name", ["Narnia", "", "XX"])
def test_unknown_country(name: str) -> None:
    with pytest.raises(InvalidInputError, match="country"):
        Region.from_country(name)


def test_topojson_decoder_quantised_and_reversed_arcs() -> None:
    topo = {
        "type": "Topology",
        "transform": {"scale": [0.5, 0.5], "translate": [10, 20]},
        "arcs": [[[0, 0], [2, 0], [0, 2]], [[2, 2], [-2, 0], [0, -2]]],
        "objects": {
            "o": {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "arcs": [[0, 1]], "id": "1", "properties": {"name": "sq"}},
                    {"type": "Polygon", "arcs": [[~1, ~0]], "id": "2"},
                ],
            }
        },
    }
    (p1, g1), (p2, g2) = decode_topojson(topo, "o")
    assert p1 == {"name": "sq", "id": "1"} and p2 == {"id": "2"}
    assert g1.equals(shapely.box(10, 20, 11, 21)) and g2.equals(g1)


def test_a_table_without_geometry_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "points.csv"
    p.write_text("lon,lat\n0.1,52.1\n")
    with pytest.raises(InvalidInputError, match="no geometry column"):
        Region.from_file(p)


def test_world_bbox_region_is_cheap() -> None:
    r = Region.from_bbox((-180, -90, 180, 90))
    assert len(r) == 3600 * 1800
    assert r.bbox == (-180.0, -90.0, 180.0, 90.0)
    lon, lat = r.centres
    assert lon[0] == -179.95 and lat[-1] == 89.95
