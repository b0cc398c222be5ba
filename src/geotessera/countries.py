"""Country shapes, offline: Natural Earth 1:10m admin-0 polygons from the npm package ``world-atlas``.

``assets/build.py`` (run by ``make assets`` and by every wheel or sdist build) copies
``countries-10m.json`` from that npm registry package into ``geotessera/_data/``, and derives
``country-codes.json`` (ISO 3166-1 alpha-2, alpha-3 and numeric codes with English names and
common aliases such as UK or USA) from the npm package ``i18n-iso-countries``; a wheel carries
both, so names, codes and aliases all work in the core install. The shapes are TopoJSON;
:func:`decode_topojson` turns one object of it into shapely geometries.
"""

from __future__ import annotations

import itertools
import json
import os
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from .errors import InvalidInputError, MissingExtraError

COUNTRIES_FILE = "countries-10m.json"
CODES_FILE = "country-codes.json"

ALIASES = {  # names people use that are not in the ISO table, -> ISO alpha-2
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "us": "US",
    "united states": "US",
    "america": "US",
    "united states of america": "US",
    "russia": "RU",
    "south korea": "KR",
    "north korea": "KP",
    "czechia": "CZ",
    "czech republic": "CZ",
    "ivory coast": "CI",
    "vietnam": "VN",
    "laos": "LA",
    "syria": "SY",
    "iran": "IR",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "drc": "CD",
    "dr congo": "CD",
    "congo": "CG",
    "holland": "NL",
    "the netherlands": "NL",
    "uae": "AE",
    "turkey": "TR",
    "türkiye": "TR",
    "eswatini": "SZ",
    "swaziland": "SZ",
    "burma": "MM",
    "macedonia": "MK",
}


def _data_file(name: str) -> Path:
    p = Path(__file__).parent / "_data" / name
    if not p.exists():
        raise MissingExtraError(
            f"{name} not found at {p}; it is made from npm registry packages: run `make assets` "
            "(or `python3 assets/build.py`) in a source checkout, or reinstall geotessera from a wheel"
        )
    return p


def countries_path() -> Path:
    """Path of the bundled Natural Earth TopoJSON (``GEOTESSERA_COUNTRIES_FILE`` overrides)."""
    env = os.environ.get("GEOTESSERA_COUNTRIES_FILE")
    if env:
        if not Path(env).exists():
            raise MissingExtraError(f"GEOTESSERA_COUNTRIES_FILE={env} does not exist")
        return Path(env)
    return _data_file(COUNTRIES_FILE)


def decode_topojson(
    topo: dict[str, Any], obj: str, only: int | None = None
) -> list[tuple[dict[str, Any], shapely.Geometry]]:
    """Decode the geometries of TopoJSON object ``obj`` into (properties + id, shapely geometry) pairs.

    Supports quantised (delta-encoded, with ``transform``) and plain arcs, and
    Polygon / MultiPolygon / LineString / MultiLineString / Point / MultiPoint.
    ``only`` decodes just the geometry at that index. Rings that cross the
    antimeridian are cut there and wrapped back into [-180, 180].
    """
    tr = topo.get("transform")
    arcs = topojson_arcs(topo)

    def ring(indices: list[int]) -> np.ndarray:
        parts = []
        for k, i in enumerate(indices):
            a = arcs[i] if i >= 0 else arcs[~i][::-1]
            parts.append(a if k == 0 else a[1:])  # consecutive arcs share their end point
        return np.concatenate(parts)

    def point(p: list[float]) -> list[float]:
        if tr:
            return [p[0] * tr["scale"][0] + tr["translate"][0], p[1] * tr["scale"][1] + tr["translate"][1]]
        return list(p[:2])

    def polygon(rings: list[list[int]]) -> shapely.Geometry | None:
        coords = [_unwrap(ring(r)) for r in rings]
        if len(coords[0]) < 4:  # quantisation can collapse tiny rings
            return None
        poly = shapely.Polygon(coords[0], [c for c in coords[1:] if len(c) >= 4])
        return _split_antimeridian(poly if poly.is_valid else shapely.make_valid(poly))

    out = []
    geometries = topo["objects"][obj]["geometries"]
    for g in geometries if only is None else [geometries[only]]:
        kind = g.get("type")
        geom: shapely.Geometry
        if kind in ("Polygon", "MultiPolygon"):
            polys = [polygon(p) for p in ([g["arcs"]] if kind == "Polygon" else g["arcs"])]
            kept = [p for p in polys if p is not None]
            if not kept:
                continue
            geom = kept[0] if len(kept) == 1 else shapely.union_all(kept)
        elif kind == "LineString":
            geom = shapely.LineString(ring(g["arcs"]))
        elif kind == "MultiLineString":
            geom = shapely.MultiLineString([ring(line) for line in g["arcs"]])
        elif kind == "Point":
            geom = shapely.Point(point(g["coordinates"]))
        elif kind == "MultiPoint":
            geom = shapely.MultiPoint([point(p) for p in g["coordinates"]])
        else:  # null geometry
            continue
        props = dict(g.get("properties") or {})
        if "id" in g:
            props["id"] = g["id"]
        out.append((props, shapely.make_valid(geom) if not geom.is_valid else geom))
    return out


def topojson_arcs(topo: dict[str, Any]) -> list[np.ndarray]:
    """The arcs of a TopoJSON topology as (N, 2) float64 lon/lat arrays (delta-decoded, de-quantised).

    All positions are read in one pass into one array (``np.fromiter``), then split per arc.
    """
    raw = topo["arcs"]
    lens = np.fromiter((len(a) for a in raw), dtype=np.int64, count=len(raw))
    if lens.sum() == 0:
        return [np.empty((0, 2)) for _ in raw]
    if any(len(p) != 2 for a in raw for p in a):  # positions with a third value: the slow way
        arcs = [np.asarray(a, dtype=np.float64).reshape(len(a), -1)[:, :2] for a in raw]
        flat = np.concatenate(arcs)
    else:
        positions = itertools.chain.from_iterable(itertools.chain.from_iterable(raw))
        flat = np.fromiter(positions, dtype=np.float64, count=2 * int(lens.sum())).reshape(-1, 2)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    tr = topo.get("transform")
    if tr:  # quantised: positions are deltas from the previous one within each arc
        total = np.cumsum(flat, axis=0)
        before = np.where(starts[:, None] > 0, total[np.maximum(starts - 1, 0)], 0.0)
        flat = total - np.repeat(before, lens, axis=0)
        flat = flat * np.asarray(tr["scale"]) + np.asarray(tr["translate"])
    return np.split(flat, starts[1:])


@lru_cache(maxsize=1)
def _arcs() -> tuple[np.ndarray, ...]:
    return tuple(topojson_arcs(_topology()))


@lru_cache(maxsize=1)
def border_lines() -> tuple[np.ndarray, ...]:
    """Every border and coastline of the bundled shapes as (N, 2) lon/lat polylines (N >= 2).

    Lines are cut where they cross the antimeridian, so none jumps across the map.
    Decoding takes a fraction of a second (no shapely geometry is built).
    """
    out: list[np.ndarray] = []
    for arc in _arcs():
        cuts = np.flatnonzero(np.abs(np.diff(arc[:, 0])) > 180) + 1
        out.extend(piece for piece in np.split(arc, cuts) if len(piece) >= 2)
    return tuple(out)


@lru_cache(maxsize=1)
def land_rings() -> tuple[tuple[np.ndarray, ...], ...]:
    """Country polygons of the bundled shapes as tuples of (N, 2) lon/lat rings (exterior first).

    For filling land on raster maps: rings are not validated, and a ring crossing the
    antimeridian is unwrapped (its longitudes run past +-180, continuously).
    """
    topo = _topology()
    arcs = _arcs()

    def ring(indices: list[int]) -> np.ndarray:
        parts = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in indices]
        return _unwrap(np.concatenate([p if k == 0 else p[1:] for k, p in enumerate(parts)]))

    polygons: list[tuple[np.ndarray, ...]] = []
    for g in topo["objects"]["countries"]["geometries"]:
        kind = g.get("type")
        if kind not in ("Polygon", "MultiPolygon"):
            continue
        for rings in [g["arcs"]] if kind == "Polygon" else g["arcs"]:
            built = tuple(ring(r) for r in rings)
            if len(built[0]) >= 4:
                polygons.append(built)
    return tuple(polygons)


def _unwrap(ring: np.ndarray) -> np.ndarray:
    """Make longitudes continuous along a ring that crosses the antimeridian (jumps of > 180 degrees)."""
    lon = ring[:, 0]
    jumps = np.diff(lon)
    offset = np.concatenate(
        [[0.0], np.cumsum(np.where(jumps > 180, -360.0, np.where(jumps < -180, 360.0, 0.0)))]
    )
    if not offset.any():
        return ring
    out = ring.copy()
    out[:, 0] = lon + offset
    return out


def _split_antimeridian(geom: shapely.Geometry) -> shapely.Geometry:
    """Cut a geometry with longitudes beyond +-180 at the antimeridian and wrap the pieces back."""
    minx, _, maxx, _ = geom.bounds
    if minx >= -180 and maxx <= 180:
        return geom
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        part = shapely.clip_by_rect(geom, -180 - shift, -90, 180 - shift, 90)
        if not part.is_empty:
            pieces.append(shapely.transform(part, lambda xy, s=shift: xy + np.array([s, 0.0])))
    return shapely.union_all(pieces)


@lru_cache(maxsize=1)
def _topology() -> dict[str, Any]:
    topo: dict[str, Any] = json.loads(countries_path().read_text())
    return topo


def _entries() -> list[tuple[str, str | None, int]]:
    """(name, ISO numeric id, index) of every country, without decoding geometries."""
    geoms = _topology()["objects"]["countries"]["geometries"]
    return [((g.get("properties") or {}).get("name", ""), g.get("id"), k) for k, g in enumerate(geoms)]


@lru_cache(maxsize=32)
def _geometry(index: int) -> shapely.Geometry:
    decoded = decode_topojson(_topology(), "countries", only=index)
    if not decoded:
        raise InvalidInputError("this country has no geometry in the bundled Natural Earth data")
    return decoded[0][1]


def _norm(s: str) -> str:
    """Case-, accent-, dot- and space-insensitive form of a name/code ("Côte d'Ivoire" = "cote d'ivoire")."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace(".", "").split())


@lru_cache(maxsize=1)
def iso_codes() -> dict[str, str]:
    """Normalised ISO alpha-2, alpha-3 and numeric code, English name or alias -> ISO numeric code.

    E.g. ``"uk"``, ``"gb"``, ``"gbr"``, ``"826"`` and ``"united kingdom"`` -> ``"826"``.
    """
    rows = json.loads(_data_file(CODES_FILE).read_text(encoding="utf-8"))["countries"]
    table: dict[str, str] = {}
    for alpha2, alpha3, numeric, names in rows:
        for key in (alpha2, alpha3, numeric, *names):
            table.setdefault(_norm(key), numeric)
    for alias, alpha2 in ALIASES.items():
        numeric = table.get(_norm(alpha2))
        if numeric is not None:
            table.setdefault(_norm(alias), numeric)
    return table


def country_geometry(query: str) -> tuple[shapely.Geometry, str]:
    """(lon/lat geometry, canonical name) of a country given by name, ISO code or alias.

    Names are Natural Earth's (``"United Kingdom"``); codes ISO 3166-1 alpha-2, alpha-3 or
    numeric (``GB``, ``GBR``, ``826``), in any case; aliases those of the bundled ISO table
    (``UK``, ``USA``, ``South Korea``) and a few colloquial ones (``England``, ``Holland``).
    Raises :class:`InvalidInputError` with suggestions for an unknown country.
    """
    q = _norm(query)
    if not q:
        raise InvalidInputError("country name is empty")
    entries = _entries()
    by_name = {_norm(n): (n, i, k) for n, i, k in entries}
    if q in by_name:
        n, _, k = by_name[q]
        return _geometry(k), n
    numeric = iso_codes().get(q.zfill(3) if q.isdigit() else q)
    if numeric is not None:
        for n, i, k in entries:
            if i == numeric:
                return _geometry(k), n
        names = [key for key, code in iso_codes().items() if code == numeric]
        for key in names:  # a country Natural Earth lists without its ISO number (e.g. Kosovo)
            if key in by_name:
                n, _, k = by_name[key]
                return _geometry(k), n
        raise InvalidInputError(
            f"country {query!r} (ISO {numeric}) has no shape of its own in the bundled Natural Earth data "
            "(it is drawn as part of another country); use --bbox or --region-file"
        )
    close = sorted(n for n, _, _ in entries if q[:3] and _norm(n).startswith(q[:3]))[:5]
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    raise InvalidInputError(f"unknown country {query!r}{hint}")
