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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._optional import require
from ..errors import InvalidInputError, OutputError
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
    """Rasterise ``layers`` (later ones on top) into an RGBA image of ``shape`` (H, W) over ``extent``."""
    mcolors = require("matplotlib.colors", "viz")
    h, w = shape
    west, south, east, north = (float(v) for v in extent)
    sx, sy = w / (east - west), h / (north - south)
    half = 0.05 * tile_size
    rgba = np.zeros((h, w, 4), np.uint8)
    for layer in layers:
        if not layer.count:
            continue
        cx, cy = (layer.ix + 0.5) / 10, (layer.iy + 0.5) / 10
        inside = (cx + half > west) & (cx - half < east) & (cy + half > south) & (cy - half < north)
        cx, cy = cx[inside], cy[inside]
        # every cell inside the extent gets at least one pixel, even at the edges
        x0 = np.clip(np.round((cx - half - west) * sx), 0, w - 1).astype(np.int64)
        x1 = np.minimum(np.maximum(np.round((cx + half - west) * sx), x0 + 1), w).astype(np.int64)
        y0 = np.clip(np.round((north - cy - half) * sy), 0, h - 1).astype(np.int64)
        y1 = np.minimum(np.maximum(np.round((north - cy + half) * sy), y0 + 1), h).astype(np.int64)
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


def land_mask(extent: Sequence[float], shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """(H, W) True on land (bundled country polygons) over ``extent``."""
    import shapely
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds

    from ..countries import land_rings

    h, w = shape
    step = (extent[2] - extent[0]) / w / 2
    west, south, east, north = extent
    polys = []
    for rings in land_rings():
        ext = rings[0]
        lo, hi = ext[:, 0].min(), ext[:, 0].max()
        for shift in (-360.0, 0.0, 360.0):
            if hi + shift < west or lo + shift > east:
                continue
            if ext[:, 1].max() < south or ext[:, 1].min() > north:
                continue
            thinned = [_thin(r + np.array([shift, 0.0]), step) for r in rings]
            if len(thinned[0]) >= 4:
                polys.append(shapely.Polygon(thinned[0], [t for t in thinned[1:] if len(t) >= 4]))
    if not polys:
        return np.zeros(shape, bool)
    burnt = rasterize(
        polys, out_shape=shape, transform=from_bounds(west, south, east, north, w, h), dtype="uint8"
    )
    return burnt.astype(bool)


def base_image(
    extent: Sequence[float], shape: tuple[int, int], *, show_countries: bool = True
) -> npt.NDArray[np.uint8]:
    """(H, W, 3) uint8 background over ``extent``: sea, land and borders (1 px), from the bundled shapes."""
    import shapely
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds

    h, w = shape
    img = np.empty((h, w, 3), np.uint8)
    img[:] = [round(v * 255) for v in _rgb(SEA)]
    if not show_countries:
        return img
    img[land_mask(extent, shape)] = [round(v * 255) for v in _rgb(LAND)]
    lines = [shapely.LineString(t) for t in _borders(extent, (extent[2] - extent[0]) / w / 2)]
    if lines:
        tr = from_bounds(*extent, w, h)
        edge = rasterize(lines, out_shape=shape, transform=tr, all_touched=True, dtype="uint8").astype(bool)
        img[edge] = [round(v * 255) for v in _rgb(BORDER)]
    return img


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
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    check_style(width_pixels, tile_alpha, tile_size, [layer.colour for layer in cmap.layers])
    shape = map_shape(cmap.extent, width_pixels)
    cells = paint(cmap.layers, cmap.extent, shape, tile_alpha=tile_alpha, tile_size=tile_size)
    h, w = shape
    base = np.empty((h, w, 3), np.float32)
    base[:] = np.asarray(_rgb(SEA), np.float32)
    if show_countries:
        base[land_mask(cmap.extent, shape)] = _rgb(LAND)
    a = cells.rgba[..., 3:4].astype(np.float32) / 255
    image = (base * (1 - a) + cells.rgba[..., :3].astype(np.float32) / 255 * a).clip(0, 1)

    left, right, top, bottom = _MARGINS
    fig_w, fig_h = w + left + right, h + top + bottom
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, w / fig_w, h / fig_h))
    west, south, east, north = cmap.extent
    ax.imshow(
        image, extent=(west, east, south, north), interpolation="nearest", origin="upper", aspect="auto"
    )
    if show_countries:
        lines = _borders(cmap.extent, (east - west) / w / 2)
        ax.add_collection(LineCollection(lines, colors=BORDER, linewidths=0.4))
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
    return cells


def _draw_outline(ax: Any, geom: Any) -> None:
    import shapely
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
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".png", dir=out.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=DPI, format="png")
            os.replace(tmp, out)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from exc
