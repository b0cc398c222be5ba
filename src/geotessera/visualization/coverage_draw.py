"""Drawing a :class:`~.cells.CoverageMap`: cells rasterised into an image array, then one matplotlib figure.

Cells are painted with a 2-D difference array (four ``np.bincount`` calls and two
cumulative sums per layer), so 1.6 million locations cost milliseconds and every cell
gets at least one pixel. Land comes from the bundled Natural Earth shapes (rasterised,
vertices thinned to the pixel size first), borders and coastlines are one
``LineCollection``. The figure is as many pixels wide as asked.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import InvalidInputError, OutputError
from ..files import atomic_path
from .cells import CoverageLayer, CoverageMap

log = logging.getLogger(__name__)

SEA, LAND, BORDER = "#eef3f8", "#dcdcdc", "#8a8a8a"
_MARGINS = (72, 24, 64, 48)  # left, right, top, bottom in pixels around the map
DPI = 100


@dataclass(frozen=True)
class CoverageImage:
    """The rasterised cells: ``rgba`` (H, W, 4) uint8 (transparent where no tile), over ``extent``."""

    rgba: npt.NDArray[np.uint8]
    extent: tuple[float, float, float, float]
    base: npt.NDArray[np.uint8] | None = None
    """(H, W, 3) background the cells were drawn on (sea, land, borders), when there was one."""


def check_style(width_pixels: int, tile_alpha: float, tile_size: float, colours: Sequence[str] = ()) -> None:
    """Validate drawing options (InvalidInputError naming the bad value)."""
    mcolors = require("matplotlib.colors", "viz")
    if not isinstance(width_pixels, int | np.integer) or not 200 <= width_pixels <= 20_000:
        raise InvalidInputError(f"width must be a whole number of pixels in 200..20000, got {width_pixels!r}")
    if not (isinstance(tile_alpha, int | float) and 0 <= tile_alpha <= 1):
        raise InvalidInputError(f"tile alpha must be between 0 and 1, got {tile_alpha!r}")
    if not (isinstance(tile_size, int | float) and 0 < tile_size <= 100 and math.isfinite(tile_size)):
        raise InvalidInputError(
            f"tile size must be a positive multiplier (1.0 = true size), got {tile_size!r}"
        )
    for c in colours:
        if not mcolors.is_color_like(c):
            raise InvalidInputError(
                f"unknown colour {c!r} (use a name such as 'red' or a hex code '#ff0000')"
            )


def map_shape(extent: Sequence[float], width_pixels: int) -> tuple[int, int]:
    """(height, width) in pixels of the map area for a figure ``width_pixels`` wide (plate carree)."""
    w = max(100, width_pixels - _MARGINS[0] - _MARGINS[1])
    w_deg, h_deg = extent[2] - extent[0], extent[3] - extent[1]
    return max(50, round(w * h_deg / w_deg)), w


def paint(
    layers: Sequence[CoverageLayer],
    extent: Sequence[float],
    shape: tuple[int, int],
    *,
    tile_alpha: float = 0.6,
    tile_size: float = 1.0,
) -> CoverageImage:
    """Rasterise ``layers`` (smaller ones on top) into an RGBA image of ``shape`` (H, W) over ``extent``."""
    mcolors = require("matplotlib.colors", "viz")
    h, w = shape
    west, south, east, north = (float(v) for v in extent)
    sx, sy = w / (east - west), h / (north - south)
    half = 0.5 * tile_size  # in cells
    rgba = np.zeros((h, w, 4), np.uint8)
    # the largest layer first: where a pixel holds cells of several layers, the rarer one shows
    for layer in sorted(layers, key=lambda la: -la.count):
        if not layer.count:
            continue
        # cell edges from whole numbers, so neighbours share their edge exactly (no hairline gaps)
        lon0, lon1 = (layer.ix + (0.5 - half)) / 10, (layer.ix + (0.5 + half)) / 10
        lat0, lat1 = (layer.iy + (0.5 - half)) / 10, (layer.iy + (0.5 + half)) / 10
        inside = (lon1 > west) & (lon0 < east) & (lat1 > south) & (lat0 < north)
        lon0, lon1, lat0, lat1 = lon0[inside], lon1[inside], lat0[inside], lat1[inside]
        # every cell inside the extent gets at least one pixel, even at the edges
        x0 = np.clip(np.round((lon0 - west) * sx), 0, w - 1).astype(np.int64)
        x1 = np.minimum(np.maximum(np.round((lon1 - west) * sx), x0 + 1), w).astype(np.int64)
        y0 = np.clip(np.round((north - lat1) * sy), 0, h - 1).astype(np.int64)
        y1 = np.minimum(np.maximum(np.round((north - lat0) * sy), y0 + 1), h).astype(np.int64)
        n = (h + 1) * (w + 1)
        diff = (
            np.bincount(y0 * (w + 1) + x0, minlength=n)
            - np.bincount(y0 * (w + 1) + x1, minlength=n)
            - np.bincount(y1 * (w + 1) + x0, minlength=n)
            + np.bincount(y1 * (w + 1) + x1, minlength=n)
        ).reshape(h + 1, w + 1)
        covered = diff.cumsum(axis=0).cumsum(axis=1)[:h, :w] > 0
        r, g, b, _ = (round(v * 255) for v in mcolors.to_rgba(layer.colour))
        rgba[covered] = (r, g, b, round(255 * tile_alpha))
    return CoverageImage(rgba, (west, south, east, north))


def _thin(ring: npt.NDArray[np.float64], step: float) -> npt.NDArray[np.float64]:
    """A line's vertices snapped to a ``step`` lattice with repeats dropped (sub-pixel detail goes)."""
    q = np.round(ring / step)
    keep = np.ones(len(q), bool)
    keep[1:] = (q[1:] != q[:-1]).any(axis=1)
    keep[-1] = True
    return ring[keep]


def _land(extent: Sequence[float], step: float) -> list[npt.NDArray[np.float64]]:
    """Exterior rings of the bundled country polygons near ``extent`` (thinned; copies shifted by
    +-360 degrees where a ring crosses the antimeridian). Holes are left out: they are lakes or
    enclaves, which are countries drawn on top."""
    from ..countries import land_rings

    west, south, east, north = extent
    out = []
    for rings in land_rings():
        ext = rings[0]
        lo, hi = ext[:, 0].min(), ext[:, 0].max()
        if ext[:, 1].max() < south or ext[:, 1].min() > north:
            continue
        for shift in (-360.0, 0.0, 360.0):
            if hi + shift < west or lo + shift > east:
                continue
            t = _thin(ext + np.array([shift, 0.0]), step)
            if len(t) >= 3:
                out.append(t)
    return out


def base_image(
    extent: Sequence[float], shape: tuple[int, int], *, show_countries: bool = True
) -> npt.NDArray[np.uint8]:
    """(H, W, 3) uint8 background over ``extent``: sea, land and borders from the bundled shapes.

    Drawn with matplotlib's Agg renderer (polygons and lines straight from numpy arrays,
    antialiased), pixel for pixel on the plate carree grid of :func:`paint`.
    """
    require("matplotlib", "viz")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure

    h, w = shape
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI, facecolor=SEA)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    west, south, east, north = extent
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    if show_countries:
        step = (east - west) / w / 2
        ax.add_collection(PolyCollection(_land(extent, step), facecolors=LAND, edgecolors="none"))
        ax.add_collection(LineCollection(_borders(extent, step), colors=BORDER, linewidths=0.5))
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    if rgba.shape[:2] != (h, w):  # pragma: no cover - figure sizes are exact at this DPI
        raise RuntimeError(f"rendered {rgba.shape[:2]}, expected {(h, w)}")
    return np.ascontiguousarray(rgba[..., :3])


def _borders(extent: Sequence[float], step: float) -> list[npt.NDArray[np.float64]]:
    from ..countries import border_lines

    west, south, east, north = extent
    out = []
    for line in border_lines():
        if (
            line[:, 0].max() < west
            or line[:, 0].min() > east
            or line[:, 1].max() < south
            or line[:, 1].min() > north
        ):
            continue
        t = _thin(line, step)
        if len(t) >= 2:
            out.append(t)
    return out


def render_png(
    cmap: CoverageMap,
    output_path: str | os.PathLike[str],
    *,
    width_pixels: int = 2000,
    show_countries: bool = True,
    tile_alpha: float = 0.6,
    tile_size: float = 1.0,
) -> CoverageImage:
    """Write the PNG of ``cmap`` (title, land, borders, cells, outline, legend); returns the cell image."""
    require("matplotlib", "viz")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    check_style(width_pixels, tile_alpha, tile_size, [layer.colour for layer in cmap.layers])
    shape = map_shape(cmap.extent, width_pixels)
    cells = paint(cmap.layers, cmap.extent, shape, tile_alpha=tile_alpha, tile_size=tile_size)
    h, w = shape
    base = base_image(cmap.extent, shape, show_countries=show_countries)
    a = cells.rgba[..., 3:4].astype(np.float32) / 255
    image = (base.astype(np.float32) * (1 - a) + cells.rgba[..., :3].astype(np.float32) * a) / 255

    left, right, top, bottom = _MARGINS
    fig_w, fig_h = w + left + right, h + top + bottom
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, w / fig_w, h / fig_h))
    west, south, east, north = cmap.extent
    ax.imshow(
        image, extent=(west, east, south, north), interpolation="nearest", origin="upper", aspect="auto"
    )
    handles = [Patch(facecolor=layer.colour, alpha=tile_alpha, label=layer.label) for layer in cmap.layers]
    if cmap.outline is not None:
        _draw_outline(ax, cmap.outline)
        handles.append(Patch(facecolor="none", edgecolor="red", linestyle="--", label="Region boundary"))
    if show_countries:
        handles.append(Patch(facecolor=LAND, edgecolor=BORDER, label="Land (Natural Earth)"))
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_xlabel("Longitude")
    ax.set_ylabel("Latitude")
    ax.grid(True, alpha=0.3, linestyle="--")
    ax.legend(handles=handles, loc="lower left", fontsize=9, framealpha=0.9)
    fig.suptitle(
        cmap.title, x=left / fig_w, y=1 - 12 / fig_h, ha="left", va="top", fontsize=13, fontweight="bold"
    )
    sub = cmap.facts.get("subtitle")
    if sub:
        fig.text(left / fig_w, 1 - 36 / fig_h, sub, ha="left", va="top", fontsize=9, color="#444444")
    _save(fig, Path(output_path))
    return CoverageImage(cells.rgba, cells.extent, base)


def _draw_outline(ax: Any, geom: Any) -> None:
    import shapely

    require("matplotlib", "viz")
    from matplotlib.collections import LineCollection

    edges = shapely.boundary(geom) if shapely.get_dimensions(geom) == 2 else geom
    lines = [shapely.get_coordinates(part) for part in shapely.get_parts(shapely.line_merge(edges))]
    lines = [xy for xy in lines if len(xy) >= 2]
    ax.add_collection(LineCollection(lines, colors="red", linewidths=1.6, linestyles="--", alpha=0.85))


def _rgb(colour: str) -> tuple[float, float, float]:
    mcolors = require("matplotlib.colors", "viz")
    r, g, b = mcolors.to_rgb(colour)
    return float(r), float(g), float(b)


def _save(fig: Any, out: Path) -> None:
    if out.is_dir():
        raise InvalidInputError(f"{out} is a directory; give a PNG file name")
    try:
        with atomic_path(out, fsync=False) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", pil_kwargs={"compress_level": 3})
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
