"""Load, cache and refresh Tessera manifests (``formats.md`` section 4), offline-first.

Sources, in priority order: ``registry_path`` (one Parquet file), ``registry_dir``
(``manifest.parquet``, else the legacy ``registry.parquet``; ``landmasks.parquet``
beside it when present), ``registry_url`` (URL of a manifest), else the default
remote ``{base}/{vpath}/manifest.parquet``.

Remote manifests are fetched through a :class:`~geotessera.transfer.Source` (the client's
own, so one HTTP client serves tiles and manifests), verified and retried like tiles, and
cached as ``{cache}/{vpath}/manifest.parquet`` and ``landmasks.parquet`` (a base other than
the public bucket gets its own sub-directory), each written atomically with a ``*.json``
sidecar recording the source URL and its ETag / Last-Modified. A cached manifest is used at
once; a conditional GET bounded by ``freshness_timeout_s`` (2 s) runs beside the read and
can only warn, never fail or stall start-up. ``offline=True`` never touches the network.

Reading and checking the tables themselves (``read_tiles``, ``prepare_tiles``,
``prepare_landmasks``, ``check_schema``) lives in ``_tables.py``; importable from here.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from ..config import FRESHNESS_TIMEOUT_S, RetryPolicy, default_cache_dir
from ..datasets import DatasetId
from ..errors import CorruptDataError, GeoTesseraError, SourceError
from ..layouts import DEFAULT_BASE_URL, S3_LAYOUT
from ..transfer import HttpSource, LocalSource, Source
from ._cache import Remote, read_sidecar, refresh_both
from ._tables import KEY_COLUMNS as KEY_COLUMNS
from ._tables import SIZE_COLUMNS as SIZE_COLUMNS
from ._tables import TILE_COLUMNS as TILE_COLUMNS
from ._tables import check_schema as check_schema
from ._tables import landmasks_from_file, read_tiles
from ._tables import prepare_landmasks as prepare_landmasks
from ._tables import prepare_tiles as prepare_tiles

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.parquet"
LEGACY_MANIFEST_FILE = "registry.parquet"
LANDMASKS_FILE = "landmasks.parquet"


class ManifestKeys(Protocol):
    """The part of a :class:`~geotessera.layouts.Layout` the registry needs."""

    @property
    def name(self) -> str: ...
    def manifest_key(self, ds: DatasetId) -> str: ...
    def landmasks_manifest_key(self, ds: DatasetId) -> str: ...


@dataclass(frozen=True)
class Manifest:
    """A manifest ready for queries.

    ``tiles`` holds the rows of ``dataset`` only: year (int64) and lon_i, lat_i (int32 keys
    ``round(x * 100)``), plus grid_size and scales_size (int64 bytes) when they were read.
    Start-up reads only the keys; :meth:`load_sizes` reads the sizes from ``path`` on demand.
    ``origin`` is the path or URL it came from.
    """

    tiles: pa.Table
    dataset: DatasetId
    origin: str
    path: Path | None = None
    landmasks: pa.Table | None = None
    landmasks_path: Path | None = None
    from_cache: bool = False

    def load_sizes(self) -> pa.Table:
        """Table of :data:`TILE_COLUMNS` (keys and sizes in bytes) of the dataset's rows."""
        if "grid_size" in self.tiles.column_names or self.path is None:
            return self.tiles
        return read_tiles(self.path, self.dataset, sizes=True)

    def load_landmasks(self) -> pa.Table | None:
        """Landmasks table (lon_i, lat_i int32; file_size int64 bytes), or None when there is none."""
        if self.landmasks is not None or self.landmasks_path is None:
            return self.landmasks
        return landmasks_from_file(self.landmasks_path, self.dataset)


def _is_http_url(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def _local_path_of(url: str) -> Path | None:
    """The filesystem path of a plain path or ``file://`` URL; ``None`` for other schemes."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and os.name == "nt"):  # C:\...
        return Path(url)
    return None


# --- where remote manifests are cached ----------------------------------------------------
def _remotes(
    ds: DatasetId,
    registry_url: str | None,
    base_url: str,
    source: Source | None,
    layout: ManifestKeys,
    cache: Path,
    retry: RetryPolicy | None,
) -> tuple[Remote, Remote]:
    if registry_url is not None:
        base, _, name = registry_url.rstrip("/").rpartition("/")
        # a manifest URL given by the user may be any web server: verified when it sends a CRC
        src: Source = HttpSource(base, retry=retry, require_checksum=False)
        keys = (name, LANDMASKS_FILE)
        urls = (registry_url, f"{base}/{LANDMASKS_FILE}")
    else:
        src = source or HttpSource(base_url, retry=retry, require_checksum=layout.name != "source-coop")
        keys = (layout.manifest_key(ds), layout.landmasks_manifest_key(ds))
        urls = (f"{base_url.rstrip('/')}/{keys[0]}", f"{base_url.rstrip('/')}/{keys[1]}")
    where = cache / ds.vpath
    if urls[0] != f"{DEFAULT_BASE_URL}/{S3_LAYOUT.manifest_key(ds)}":
        where = where / hashlib.sha256(urls[0].encode()).hexdigest()[:12]
    return (
        Remote(src, keys[0], urls[0], where / MANIFEST_FILE),
        Remote(src, keys[1], urls[1], where / LANDMASKS_FILE),
    )


def cached_manifest_paths(
    dataset: DatasetId | None = None,
    *,
    registry_url: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    layout: ManifestKeys = S3_LAYOUT,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Path, Path]:
    """Where :func:`load_manifest` caches (manifest, landmasks) of a remote; sidecars add ``.json``."""
    ds = dataset or DatasetId()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    m, lm = _remotes(ds, registry_url, base_url, None, layout, cache, None)
    return m.cache, lm.cache


def _load_remote(m: Remote, lm: Remote, ds: DatasetId, offline: bool, timeout_s: float) -> Manifest:
    cached = read_sidecar(m.cache, m.url) is not None
    if offline:
        if not cached:
            raise SourceError(
                f"offline and no cached manifest of {ds} from {m.url} (looked in {m.cache.parent}); "
                "run once online, or give a local manifest (--registry-dir DIR / registry_dir=)"
            )
        return _from_file(m.cache, lm.cache, ds, m.url, from_cache=True)
    if cached:
        out: dict[str, Any] = {}
        worker = threading.Thread(target=refresh_both, args=(m, lm, timeout_s, out), daemon=True)
        t0 = time.monotonic()
        worker.start()
        try:
            manifest = _from_file(m.cache, lm.cache, ds, m.url, from_cache=True)
        except CorruptDataError as exc:
            log.warning("cached manifest unusable (%s); downloading it again", exc)
        else:
            worker.join(max(0.0, timeout_s - (time.monotonic() - t0)))
            if worker.is_alive():
                log.warning(
                    "could not check %s for updates within %.1f s; using the cached manifest",
                    m.url,
                    timeout_s,
                )
            elif out.get("errors"):
                log.warning(
                    "could not check for manifest updates (%s); using the cached manifest", out["errors"][0]
                )
            elif out.get("manifest"):  # a newer manifest arrived in time
                manifest = _from_file(m.cache, lm.cache, ds, m.url, from_cache=False)
            return manifest
    m.refresh(None, force=True)
    try:
        lm.refresh(None, force=True)
    except GeoTesseraError as exc:
        log.warning("landmasks manifest unavailable (%s); landmask sizes will be unknown", exc)
    return _from_file(m.cache, lm.cache, ds, m.url, from_cache=False)


def _from_file(
    path: Path, landmasks: Path | None, ds: DatasetId, origin: str | None = None, *, from_cache: bool = False
) -> Manifest:
    """Manifest of a local file (keys read now, sizes and landmasks on demand)."""
    tiles = read_tiles(path, ds, origin=str(path))
    lm = landmasks if landmasks is not None and landmasks.is_file() else None
    return Manifest(tiles, ds, origin or str(path), path=path, landmasks_path=lm, from_cache=from_cache)


def load_manifest(
    dataset: DatasetId | None = None,
    *,
    registry_path: str | os.PathLike[str] | None = None,
    registry_dir: str | os.PathLike[str] | None = None,
    registry_url: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    source: Source | None = None,
    layout: ManifestKeys = S3_LAYOUT,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool = False,
    freshness_timeout_s: float = FRESHNESS_TIMEOUT_S,
    retry: RetryPolicy | None = None,
) -> Manifest:
    """Load the manifest (and landmasks manifest) of ``dataset`` from the first source given.

    ``source`` (keys relative to ``base_url``) fetches the default remote: pass the client's
    own source so tiles and manifests share one HTTP client. Without it an
    :class:`~geotessera.transfer.HttpSource` retried under ``retry`` is made (or, when
    ``base_url`` is a local path, the mirror is read in place, as it is for a
    :class:`~geotessera.transfer.LocalSource`). Raises :class:`CorruptDataError` for an
    invalid Parquet file, :class:`SourceError` when nothing can be fetched (or ``offline``
    with nothing cached), and :class:`NotCoveredError` when the manifest holds no rows of ``dataset``.
    """
    ds = dataset or DatasetId()
    if registry_path is not None:
        path = Path(registry_path)
        if not path.is_file():
            raise SourceError(f"registry_path {path} does not exist", status=404, url=str(path))
        return _from_file(path, None, ds)
    if registry_dir is not None:
        return _load_dir(Path(registry_dir), ds)
    if registry_url is not None and not _is_http_url(registry_url):
        local = _local_path_of(registry_url)
        if local is not None:
            return load_manifest(ds, registry_path=local)
    if registry_url is None:
        if isinstance(source, LocalSource):
            return _load_mirror(source.root, layout, ds)
        local = _local_path_of(base_url) if source is None and not _is_http_url(base_url) else None
        if local is not None:
            return _load_mirror(local, layout, ds)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    m, lm = _remotes(ds, registry_url, base_url, source, layout, cache, retry)
    return _load_remote(m, lm, ds, offline, freshness_timeout_s)


def _load_dir(root: Path, ds: DatasetId) -> Manifest:
    for name in (MANIFEST_FILE, LEGACY_MANIFEST_FILE):
        path = root / name
        if path.is_file():
            return _from_file(path, root / LANDMASKS_FILE, ds)
    raise SourceError(
        f"registry_dir {root} holds neither {MANIFEST_FILE} nor {LEGACY_MANIFEST_FILE}",
        status=404,
        url=str(root),
    )


def _load_mirror(root: Path, layout: ManifestKeys, ds: DatasetId) -> Manifest:
    """A local mirror of the bucket layout: read in place, nothing cached."""
    path = root / layout.manifest_key(ds)
    if not path.is_file():
        raise SourceError(f"no manifest of {ds} at {path}", status=404, url=str(path))
    return _from_file(path, root / layout.landmasks_manifest_key(ds), ds)
