"""``GeoTesseraZarr``: read Tessera embeddings from a geoemb Zarr store without downloading tiles.

Where the store is: an explicit ``url`` (an https URL, ``s3://bucket/path`` read anonymously,
path-style on ``endpoint_url`` (default the us-west-2 endpoint), or a local path) wins;
otherwise the dataset's store under the base of :class:`~geotessera.config.Settings`
(``base_url=`` or ``GEOTESSERA_BASE_URL``, default the public bucket):
``{base}/zarr/{vpath}.zarr`` (``zarr/v1.zarr`` for the default dataset,
``zarr/v1.1-cambridge.zarr`` for another variant), as :func:`store_url` spells it.

The class is put together from :mod:`.reader_core` (settings, metadata, zones, depths,
xarray), :mod:`.reader_points` (points), :mod:`.reader_regions` (regions, GeoTIFF export,
the preview pyramid) and :mod:`.reader_patches` (ML patches).
"""

from __future__ import annotations

from .reader_core import DEFAULT_STORE_URL, REMOTE_WORKERS, default_store_url, store_url
from .reader_patches import PatchesMixin
from .reader_points import SEARCH_PX, PointsMixin
from .reader_regions import RegionsMixin

__all__ = [
    "DEFAULT_STORE_URL",
    "REMOTE_WORKERS",
    "SEARCH_PX",
    "GeoTesseraZarr",
    "default_store_url",
    "store_url",
]


class GeoTesseraZarr(PointsMixin, RegionsMixin, PatchesMixin):
    """Reader of one geoemb store (one dataset, all years, one group per UTM zone).

    Settings are taken like :class:`~geotessera.GeoTessera` takes them: explicit argument >
    ``GEOTESSERA_*`` environment > default (:class:`~geotessera.config.Settings`).

    Args:
        url: the store (https URL, ``s3://bucket/path`` or a local directory); wins over
            ``base_url``. Default: :func:`store_url` of the base and the dataset.
        dataset_version, dataset_variant: the dataset whose store is read when ``url`` is not
            given (default v1 / vultr).
        base_url: bucket URL or local directory holding ``zarr/`` (``GEOTESSERA_BASE_URL``;
            default the public bucket).
        cache_dir: ``GEOTESSERA_CACHE_DIR``; when given (either way) a remote store's shard
            indexes, inner chunks and metadata are kept under ``{cache_dir}/zarr/``, so a
            repeated read costs no network traffic. Default: a memory cache of shard indexes only.
        workers: threads reading chunks (``GEOTESSERA_WORKERS``). Default: 8 for a remote store
            (hides request latency); for a local directory the usable CPU cores (reads there are
            CPU work, and more threads only contend for the GIL: a 0.2-degree region read took
            0.9 s with 2 threads and 1.3 s with 8 on a 2-core machine).
        retries: retries of a failed request (429, 5xx, resets, timeouts), or a full
            :class:`~geotessera.config.RetryPolicy` (``GEOTESSERA_RETRIES``, default 5). A 403 is
            never retried, and never read as an absent chunk: it raises :class:`SourceError`.
        offline: ``GEOTESSERA_OFFLINE``; a remote store is then read from ``cache_dir`` only, and
            anything not cached raises :class:`SourceError` at once.
        endpoint_url: S3 endpoint for ``s3://`` URLs (e.g. a local endpoint ``http://127.0.0.1:PORT``).
        anonymous: unsigned requests (the public bucket). Signed requests are not supported.
        storage_options: fsspec-style options; only ``{"pool_size": n}`` (connections kept) is used.
    """
