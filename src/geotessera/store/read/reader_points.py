"""``GeoTesseraZarr`` at points: :meth:`sample_points`, :meth:`sample_at` and :meth:`probe`.

The lookup rules (zone, pixel, seams, repair, precedence) are :mod:`.sampling`'s.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from ...errors import InvalidInputError, ScaleWarning
from .reader_core import StoreCore
from .sampling import sample as sample_pixels
from .zones import STATUS_NAMES

SEARCH_PX = 1
"""Default ``search_px``: a never-written pixel takes the nearest valid one within 1 pixel."""


def _search_radius(search_px: int) -> int:
    if isinstance(search_px, bool) or not isinstance(search_px, int | np.integer) or search_px < 0:
        raise InvalidInputError(f"search_px must be a whole number >= 0, got {search_px!r}")
    if search_px > 64:
        raise InvalidInputError(f"search_px {search_px} is too large (at most 64 pixels)")
    return int(search_px)


class PointsMixin(StoreCore):
    """Embeddings at lon/lat points (see :mod:`.sampling` for the lookup rules)."""

    @overload
    def sample_points(
        self,
        points: npt.ArrayLike,
        year: int | None = None,
        *,
        years: Sequence[int] | None = None,
        return_status: Literal[False] = False,
        cross_zone: bool = True,
        search_px: int = SEARCH_PX,
        depth: int | None = None,
        progress: Any = None,
    ) -> npt.NDArray[np.float32]: ...

    @overload
    def sample_points(
        self,
        points: npt.ArrayLike,
        year: int | None = None,
        *,
        years: Sequence[int] | None = None,
        return_status: Literal[True],
        cross_zone: bool = True,
        search_px: int = SEARCH_PX,
        depth: int | None = None,
        progress: Any = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.str_]]: ...

    def sample_points(
        self,
        points: npt.ArrayLike,
        year: int | None = None,
        *,
        years: Sequence[int] | None = None,
        return_status: bool = False,
        cross_zone: bool = True,
        search_px: int = SEARCH_PX,
        depth: int | None = None,
        progress: Any = None,
    ) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32], npt.NDArray[np.str_]]:
        """Embeddings at points.

        Args:
            points: (N, 2) lon, lat in degrees (EPSG:4326), or any iterable of (lon, lat).
            year: one year -> (N, B) float32.
            years: several years -> (Y, N, B) float32 (``year`` is then ignored).
            return_status: also return status (N,) or (Y, N) str: valid, water, nodata, outside.
            cross_zone: a point within 0.1 degree of its zone's edge whose own zone has no data
                there (nodata or outside) is read from the neighbouring zone (default True).
            search_px: a point whose pixel was never written takes the nearest valid pixel
                within this many pixels (default 1; 0 reads exactly the pixel under each point).
                Water is never searched past.
            depth: read the store's copy of the first ``depth`` bands (see :attr:`depths`);
                B is then ``depth``. Default: all 128.
            progress: accepted for compatibility with the published reader; unused.

        Rows are NaN where there is no data; input order is kept. A point within one pixel
        outside a zone grid snaps to its edge.
        """
        del progress
        raw: Any = list(points) if _is_iterator(points) else points  # type: ignore[arg-type]
        pts = np.asarray(raw, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise InvalidInputError(f"points must be an (N, 2) array of lon, lat; got shape {pts.shape}")
        if years is not None:
            wanted = [int(y) for y in years]
        elif year is not None:
            wanted = [int(year)]
        else:
            raise InvalidInputError("give year=... or years=[...]")
        for y in wanted:
            self._require_year(y)
        d = self._depth(depth)
        out, status, n_bad = sample_pixels(
            self._lookup(d),
            self.reader,
            pts[:, 0],
            pts[:, 1],
            wanted,
            n_bands=self._bands(d),
            cross_zone=bool(cross_zone),
            search_px=_search_radius(search_px),
        )
        if n_bad:
            warnings.warn(
                f"{n_bad} sampled pixels have implausible scales outside [0, 1); returned as NaN",
                ScaleWarning,
                stacklevel=2,
            )
        names = STATUS_NAMES[status]
        if years is None:
            out, names = out[0], names[0]
        return (out, names) if return_status else out

    def probe(
        self,
        lon: float,
        lat: float,
        year: int,
        *,
        cross_zone: bool = True,
        search_px: int = SEARCH_PX,
        depth: int | None = None,
    ) -> tuple[npt.NDArray[np.float32] | None, str]:
        """``(vector (B,) float32 or None, status)`` at one point: the vector when the status is
        ``valid``, else None with ``water``, ``nodata`` or ``outside``. Same rules as
        :meth:`sample_points`."""
        vals, status = self.sample_points(
            [(float(lon), float(lat))],
            year,
            return_status=True,
            cross_zone=cross_zone,
            search_px=search_px,
            depth=depth,
        )
        st = str(status[0])
        return (vals[0] if st == "valid" else None), st

    def sample_at(
        self,
        lon: float,
        lat: float,
        year: int,
        *,
        cross_zone: bool = True,
        search_px: int = SEARCH_PX,
        depth: int | None = None,
    ) -> npt.NDArray[np.float32]:
        """The embedding (B,) float32 at one point: NaN unless its status is ``valid``
        (:meth:`probe` says why)."""
        vals = self.sample_points(
            [(float(lon), float(lat))],
            year,
            cross_zone=cross_zone,
            search_px=search_px,
            depth=depth,
        )
        return vals[0]


def _is_iterator(points: object) -> bool:
    """True for one-shot iterables (generators) that numpy would not read as a sequence."""
    return not isinstance(points, np.ndarray | list | tuple) and hasattr(points, "__iter__")
