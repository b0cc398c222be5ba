"""The core of ``GeoTesseraZarr``: where the store is, its metadata, zones and depths.

The reading methods are added by :mod:`.reader_points`, :mod:`.reader_regions` and
:mod:`.reader_patches`; :mod:`.reader` puts them together.

Where the store is: an explicit ``url`` (an https URL, ``s3://bucket/path`` read anonymously,
path-style on ``endpoint_url`` (default the us-west-2 endpoint), or a local path) wins;
otherwise the dataset's store under the base of :class:`~geotessera.config.Settings`
(``base_url=`` or ``GEOTESSERA_BASE_URL``, default the public bucket):
``{base}/zarr/{vpath}.zarr`` (``zarr/v1.zarr`` for the default dataset,
``zarr/v1.1-cambridge.zarr`` for another variant), as :func:`store_url` spells it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from ..._optional import require
from ...config import RetryPolicy, Settings
from ...datasets import DatasetId
from ...errors import CorruptDataError, InvalidInputError, NotCoveredError, SourceError
from ...grid import as_bbox, utm_zone
from ...layouts import DEFAULT_BASE_URL
from ...transfer import CountingSource, LocalSource, OfflineSource, Source, source_from_url
from ..conventions import N_BANDS, StoreInfo, parse_root, zone_from_group_name
from ..layout import ArrayLayout
from .cache import DiskCache
from .chunk_reader import ChunkReader, usable_cores
from .zones import Zone, check_depth, load_zone

log = logging.getLogger(__name__)

REMOTE_WORKERS = 8
"""Threads reading a remote store by default: enough requests in flight to hide their latency."""


def store_url(base: str, dataset: DatasetId | None = None) -> str:
    """The store of ``dataset`` under a base URL or directory: ``{base}/zarr/{vpath}[-{variant}].zarr``."""
    ds = dataset or DatasetId()
    suffix = "" if ds.variant == DatasetId().variant else f"-{ds.variant}"
    name = f"zarr/{ds.vpath}{suffix}.zarr"
    return f"{base.rstrip('/')}/{name}" if "://" in base else os.path.join(base, *name.split("/"))


def default_store_url(dataset: DatasetId | None = None) -> str:
    """Public store URL of a dataset: ``{DEFAULT_BASE_URL}/zarr/{vpath}[-{variant}].zarr``."""
    return store_url(DEFAULT_BASE_URL, dataset)


DEFAULT_STORE_URL = default_store_url()


def _open_location(
    url: str, settings: Settings, endpoint_url: str | None, pool_size: int | None
) -> tuple[Source, DiskCache | None, int]:
    """(source, disk cache or None, worker threads) of the store at ``url`` under ``settings``."""
    if "://" not in url or url.lower().startswith("file://"):
        local = source_from_url(url)
        return local, None, settings.workers if "workers" in settings.chosen else usable_cores()
    workers = settings.workers if "workers" in settings.chosen else REMOTE_WORKERS
    disk = DiskCache(settings.cache_dir / "zarr", url) if "cache_dir" in settings.chosen else None
    if settings.offline:
        if disk is None:
            raise SourceError(
                f"offline: the Zarr store {url} is remote and no cache is set (give cache_dir= or "
                "GEOTESSERA_CACHE_DIR where an earlier online read cached what you need)"
            )
        return OfflineSource(f"the Zarr store {url}"), disk, workers
    source = source_from_url(
        url,
        s3_endpoint=endpoint_url,
        pool_size=pool_size or workers + 1,
        retry=settings.retry,
        require_checksum=False,  # whole objects are checked when a checksum is sent; ranges never are
    )
    return source, disk, workers


class StoreCore:
    """What every reading method of :class:`~.reader.GeoTesseraZarr` builds on (see there)."""

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        dataset_version: str | None = None,
        dataset_variant: str | None = None,
        base_url: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        workers: int | None = None,
        retries: int | RetryPolicy | None = None,
        offline: bool | None = None,
        endpoint_url: str | None = None,
        anonymous: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not anonymous:
            raise InvalidInputError("signed S3 requests are not supported; Tessera stores are public")
        self.settings = Settings.resolve(
            base_url=base_url, cache_dir=cache_dir, offline=offline, workers=workers, retries=retries
        )
        self._asked = DatasetId.parse(dataset_version, dataset_variant)
        self.url = os.fspath(url) if url is not None else store_url(self.settings.base_url, self._asked)
        pool = int((storage_options or {}).get("pool_size", 0)) or None
        location, disk, n = _open_location(self.url, self.settings, endpoint_url, pool)
        self._root = location.root if isinstance(location, LocalSource) else None
        self.source = CountingSource(location)
        """Where the store's objects are read; counts requests and bytes."""
        self.reader = ChunkReader(
            self.source,
            disk=disk,
            workers=n,
            fallback=self._zarr_chunk,
            batch_requests=self._root is not None,
        )
        root = self._json("zarr.json")
        if root is None:
            raise NotCoveredError(f"no Zarr store at {self.url} (zarr.json not found)")
        self.info: StoreInfo = parse_root(root.get("attributes", {}))
        cons = (root.get("consolidated_metadata") or {}).get("metadata")
        self._consolidated: dict[str, Any] | None = dict(cons) if isinstance(cons, dict) else None
        self._zones: dict[int, Zone | None] = {}
        self._zone_datasets: dict[tuple[int, int], Any] = {}
        self._zarr_group: Any = None
        self._lock = threading.Lock()  # the lazy caches above are filled from any thread

    # --- the store's attributes -----------------------------------------------------------
    @property
    def dataset(self) -> DatasetId:
        """The dataset (version, variant) the store holds (its ``tessera:`` attributes), else the
        one asked for."""
        return self.info.dataset or self._asked

    @property
    def model_version(self) -> str:
        """The dataset version of the model run (``1.0``, ``1.1``): the store's
        ``tessera:dataset_version``, else the version asked for."""
        return self.dataset.version

    @property
    def model(self) -> str | None:
        """The ``geoemb:model`` attribute (a URL naming the model run), when the store has one."""
        return self.info.model

    @property
    def build_version(self) -> str | None:
        """The writer that built the store (``geoemb:build_version``, e.g. ``geotessera 0.11.0``)."""
        return self.info.build_version

    @property
    def n_bands(self) -> int:
        """Bands of the full embedding (``geoemb:dimensions``, 128)."""
        return self.info.dimensions

    @property
    def depths(self) -> dict[int, str]:
        """Truncated copies the store holds: ``{depth: array name}`` (``geoemb:depths``), e.g.
        ``{4: "embeddings_d4", 16: "embeddings_d16"}``; empty for a store without them."""
        return self.info.depth_arrays

    @property
    def crs(self) -> dict[int, str]:
        """``{zone: "EPSG:326NN"}`` of the zones present: each zone group is one grid in the
        zone's northern CRS (southern pixels have negative northings)."""
        return {z: f"EPSG:{32600 + z}" for z in self.zones}

    def _depth(self, depth: int | None) -> int | None:
        """``depth`` checked against :attr:`depths` (None: the full embedding)."""
        return check_depth(depth, self.info.depths, self.n_bands)

    def _lookup(self, depth: int | None) -> Callable[[int], Zone | None]:
        """``zone(z)`` reading the copy of ``depth`` bands (None: all of them)."""
        if depth is None:
            return self.zone

        def at(z: int) -> Zone | None:
            zz = self.zone(z)
            return None if zz is None else zz.at_depth(depth)

        return at

    def _bands(self, depth: int | None) -> int:
        return N_BANDS if depth is None else depth

    # --- metadata -----------------------------------------------------------------------
    def _json(self, key: str) -> dict[str, Any] | None:
        data = self.reader.read_object(key)
        if data is None:
            return None
        try:
            out: dict[str, Any] = json.loads(data)
        except ValueError as exc:
            raise CorruptDataError(f"{self.url}/{key}: invalid JSON ({exc})") from exc
        return out

    def _meta(self, path: str) -> dict[str, Any] | None:
        if self._consolidated is not None:
            meta: dict[str, Any] | None = self._consolidated.get(path)
            return meta
        return self._json(f"{path}/zarr.json")

    @property
    def zones(self) -> list[int]:
        """UTM zones present (from consolidated metadata; otherwise the zones read so far)."""
        if self._consolidated is not None:
            return sorted(z for k in self._consolidated if "/" not in k and (z := zone_from_group_name(k)))
        with self._lock:
            return sorted(z for z, v in self._zones.items() if v is not None)

    def zone(self, zone: int) -> Zone | None:
        """The readable zone ``zone`` (None when the store has no such group); loaded once."""
        with self._lock:
            if zone in self._zones:
                return self._zones[zone]
        loaded = load_zone(
            zone, self._meta, self.reader, self.info.scale_nodata, self.url, depths=self.info.depths
        )
        with self._lock:
            return self._zones.setdefault(zone, loaded)  # a racing loader's equal result is kept

    def _zarr_chunk(self, layout: ArrayLayout, coords: tuple[int, ...]) -> npt.NDArray[Any]:
        """Fallback: one inner chunk read through zarr-python (called from reader threads)."""
        with self._lock:
            if self._zarr_group is None:
                zarr = require("zarr", "zarr")
                self._zarr_group = zarr.open_group(self._zarr_store(), mode="r")
            group = self._zarr_group
        arr = group[layout.path]
        sl = tuple(slice(c * s, (c + 1) * s) for c, s in zip(coords, layout.inner_shape, strict=True))
        data = np.asarray(arr[sl])
        pad = [(0, s - d) for s, d in zip(layout.inner_shape, data.shape, strict=True)]
        return np.pad(data, pad, constant_values=layout.fill_value) if any(p[1] for p in pad) else data

    def _zarr_store(self) -> Any:
        if self._root is not None:
            return str(self._root)
        from .zarr_adapter import SourceStore

        return SourceStore(self.source)

    @property
    def years(self) -> list[int]:
        """Years held by any zone, ascending."""
        return sorted({y for z in self.zones if (zz := self.zone(z)) for y in zz.years})

    def _require_year(self, year: int) -> None:
        """Raise :class:`NotCoveredError` naming the store's years when ``year`` is not held."""
        if int(year) not in self.years:
            raise NotCoveredError(
                f"store {self.url} has no data for {year}; its years: {', '.join(map(str, self.years))}"
            )

    # --- xarray -------------------------------------------------------------------------
    def open_zone(
        self,
        *,
        lon: float | None = None,
        zone: int | None = None,
        bbox: Any = None,
        chunks: int = 1024,
    ) -> Any:
        """One zone as an xarray Dataset backed by dask (``embeddings`` int8, ``scales`` float32,
        and ``embeddings_d{D}`` for each depth the store holds).

        Give exactly one of ``zone``, ``lon`` (its tile's zone) or ``bbox`` (the zone of its
        centre). Chunked ``chunks`` x ``chunks`` pixels (all bands, one year) rather than whole
        shards; opened once per (zone, chunks). A ``spatial_ref`` coordinate carries ``crs_wkt``
        and ``GeoTransform`` (CF), so rioxarray finds the CRS and transform; the ``proj:`` /
        ``spatial:`` attributes are kept, and the ``.tessera`` accessor (:mod:`geotessera.xr`)
        is registered: ``ds.tessera.sample(x, y, year)``, ``probe``, ``dequantise()``, ``crs``.
        """
        from .accessor import TesseraAccessor  # noqa: F401  (registers the .tessera accessor)
        from .zone_dataset import zone_dataset

        given = [v is not None for v in (zone, lon, bbox)]
        if sum(given) != 1:
            raise InvalidInputError("give exactly one of zone=..., lon=... or bbox=...")
        if zone is not None:
            z = int(zone)
        elif lon is not None:
            z = utm_zone(float(lon))
        else:
            b = as_bbox(bbox)
            z = utm_zone((b.min_lon + b.max_lon) / 2)
        zz = self.zone(z)
        if zz is None:
            raise NotCoveredError(f"store {self.url} has no zone {z} (zones: {self.zones})")
        key = (z, int(chunks))
        with self._lock:
            ds = self._zone_datasets.get(key)
        if ds is None:
            ds = zone_dataset(
                self._zarr_store(),
                zz.info,
                chunks=chunks,
                consolidated=self._consolidated is not None,
                root_attrs=self.info_attrs(),
            )
            with self._lock:
                ds = self._zone_datasets.setdefault(key, ds)
        return ds

    def info_attrs(self) -> dict[str, Any]:
        """The root attributes of the store."""
        root = self._json("zarr.json") or {}
        attrs: dict[str, Any] = root.get("attributes", {})
        return attrs

    def close(self) -> None:
        """Stop the request threads and release open files and connections."""
        self.reader.close()
        self.source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GeoTesseraZarr({self.url!r})"
