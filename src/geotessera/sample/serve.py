"""Serve a sample store over a loopback S3 endpoint (moto), like the public Tessera bucket.

:class:`SampleServer` starts moto's ``ThreadedMotoServer`` on ``127.0.0.1`` (port 0 picks a
free port), creates the bucket ``tessera-embeddings`` with an anonymous public-read bucket
policy and registers every file of a store directory as an object with its CRC64NVMe, so a
client sees what it sees on the real bucket (formats.md section 3): unsigned path-style GETs,
HEADs and listings, and ``x-amz-checksum-crc64nvme`` on responses requested with
``x-amz-checksum-mode: ENABLED``.

Objects are not loaded into moto: each is served from its file, read in 1 MiB pieces while a
response streams (``_moto.FileBody``), so start-up costs a directory walk and memory stays
flat whatever the store's size. CRC64NVMe values are computed once and kept in the store's
``sample_checksums.json`` (``_checksums``); ``sample build`` writes it, and a file that
changed since is hashed again.

Facts worth knowing (see ``performance-notes.md``):

- moto keeps its state per process: two servers in one process cannot serve the same bucket
  at once (:meth:`SampleServer.start` refuses), and :meth:`SampleServer.stop` deletes the
  bucket.
- The endpoint is read-only: every method other than GET and HEAD is answered 403, signed or
  not (a public-read S3 bucket refuses anonymous writes; here nobody may write). Anonymous
  HEAD needs ``s3:HeadObject`` in the policy, which is granted.
- Ranged GETs carry no checksum (real S3 behaves the same).
- The files must not change while served: an object's size and checksum are those its file
  had when registered.

Needs the ``sample`` extra (``moto[server]``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import mimetypes
import os
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ..datasets import normalize_version, version_path
from ..errors import GeoTesseraError, InvalidInputError
from ..progress import ItemDone, PlanReady, ProgressSink, emit
from ._checksums import SIDECAR, StoreFile, checksums, iter_files
from ._moto import _QuietMotoServer, create_bucket, delete_bucket, register_file

__all__ = ["DEFAULT_BUCKET", "DEFAULT_REGION", "SampleServer", "UploadSummary"]

_log = logging.getLogger(__name__)

DEFAULT_BUCKET = "tessera-embeddings"
DEFAULT_REGION = "us-west-2"

# Buckets served by a running SampleServer in this process (moto's backends are process-wide).
_active_buckets: set[str] = set()
_active_lock = threading.Lock()

StrPath = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class UploadSummary:
    """What a :class:`SampleServer` serves (or one :meth:`~SampleServer.add_tree` added):
    ``objects`` files, ``bytes`` bytes."""

    objects: int
    bytes: int


def _loopback_host(host: str) -> str:
    """Return ``host`` as an IP literal if it is a loopback address, else raise InvalidInputError."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInputError(
            f"host {host!r} is not an IP address; the sample server binds loopback only (use 127.0.0.1)"
        ) from None
    if not addr.is_loopback:
        raise InvalidInputError(
            f"host {host!r} is not a loopback address; the sample server binds loopback only "
            "(use 127.0.0.1) so the unauthenticated store is never exposed to the network"
        )
    return str(addr)


def _public_read_policy(bucket: str) -> str:
    """Bucket policy granting anonymous read, HEAD (moto checks s3:HeadObject) and listing."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def _object_key(prefix: str, rel: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


def dataset_prefixes(datasets: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Key prefixes of each dataset version: its tree and its Zarr stores.

    ``["v1"]`` gives ``{"v1": ("v1/", "zarr/v1.zarr/", "zarr/v1-")}``: the tiles, manifests
    and landmasks of v1 and its Zarr stores (``zarr/{vpath}.zarr``, ``zarr/{vpath}-{variant}.zarr``).
    Aliases are accepted (``1``, ``1.0``, ``v1.0``). Raises :class:`InvalidInputError` for text
    that is not a dataset version, or an empty list.
    """
    if isinstance(datasets, str) or not datasets:
        raise InvalidInputError("datasets must be a non-empty list of versions such as ['v1']")
    out: dict[str, tuple[str, ...]] = {}
    for text in datasets:
        vpath = version_path(normalize_version(text))
        out[vpath] = (f"{vpath}/", f"zarr/{vpath}.zarr/", f"zarr/{vpath}-")
    return out


def _check_datasets(root: Path, prefixes: dict[str, tuple[str, ...]]) -> None:
    """Raise InvalidInputError unless ``root`` holds each dataset version (its tree or a Zarr store)."""
    zarr = [p.name + "/" for p in (root / "zarr").glob("*.zarr")]
    missing = [
        vpath
        for vpath, (tree, *stores) in prefixes.items()
        if not (root / tree).is_dir() and not any(f"zarr/{name}".startswith(tuple(stores)) for name in zarr)
    ]
    if missing:
        held = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v"))
        raise InvalidInputError(
            f"{root} holds no dataset {', '.join(missing)} (it holds {', '.join(held) or 'none'})"
        )


class SampleServer:
    """A moto S3 endpoint on loopback serving a store directory as the public Tessera bucket.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with SampleServer("sample-store") as server:
            print(server.base_url)  # http://127.0.0.1:PORT/tessera-embeddings

    Args:
        root: store directory served at start (its top-level ``ground_truth``,
            ``sample_store.json`` and ``sample_checksums.json`` are not served); ``None``
            starts an empty bucket.
        port: TCP port; 0 (default) picks a free ephemeral port, read back by :attr:`port`.
        host: a loopback address (default ``127.0.0.1``); anything else raises
            :class:`~geotessera.errors.InvalidInputError`.
        bucket: bucket name (default ``tessera-embeddings``).
        region: bucket region (default ``us-west-2``, as the real bucket).
        datasets: serve only these dataset versions of ``root`` (e.g. ``["v1"]``): their
            tiles, manifests and landmasks and their Zarr stores under ``zarr/``; default all.
        hash_workers: threads computing the CRC64NVMe of files the sidecar does not cover.
        progress: optional sink receiving ``PlanReady``/``ItemDone`` events as files are added.
    """

    def __init__(
        self,
        root: StrPath | None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        bucket: str = DEFAULT_BUCKET,
        region: str = DEFAULT_REGION,
        datasets: Sequence[str] | None = None,
        hash_workers: int = 2,
        progress: ProgressSink | None = None,
    ) -> None:
        self._host = _loopback_host(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidInputError(f"port must be an integer in 0..65535, got {port!r}")
        if hash_workers < 1:
            raise InvalidInputError(f"hash_workers must be >= 1, got {hash_workers!r}")
        self._root = None if root is None else Path(root)
        if self._root is not None and not self._root.is_dir():
            raise InvalidInputError(
                f"store directory {str(self._root)!r} does not exist or is not a directory"
            )
        self._prefixes = None if datasets is None else dataset_prefixes(datasets)
        if self._root is not None and self._prefixes is not None:
            _check_datasets(self._root, self._prefixes)
        self._requested_port = port
        self._bucket = bucket
        self._region = region
        self._workers = hash_workers
        self._progress = progress
        self._server: _QuietMotoServer | None = None
        self._bucket_obj: Any = None
        self._port: int | None = None
        self._served = UploadSummary(0, 0)
        self._registered = False  # whether this instance holds its bucket in _active_buckets

    # -- properties -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The loopback address the server binds."""
        return self._host

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when 0 was asked for); only valid while running."""
        if self._port is None:
            raise GeoTesseraError("the sample server is not running; call start() first")
        return self._port

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    @property
    def endpoint_url(self) -> str:
        """S3 endpoint URL, ``http://127.0.0.1:PORT`` (for boto3 ``endpoint_url=``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Path-style bucket URL, ``http://127.0.0.1:PORT/tessera-embeddings`` (a geotessera base URL)."""
        return f"{self.endpoint_url}/{self._bucket}"

    @property
    def running(self) -> bool:
        """Whether the server is started and not yet stopped."""
        return self._server is not None

    @property
    def served(self) -> UploadSummary:
        """Objects and bytes served so far (added by :meth:`start` and :meth:`add_tree`)."""
        return self._served

    uploaded = served  # the name of earlier versions, when objects were uploaded into moto

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the server, create the public-read bucket and add the store directory's files.

        Returns ``self``. Raises :class:`~geotessera.errors.SourceError` if the port cannot be
        bound, and :class:`~geotessera.errors.InvalidInputError` if this process already serves
        the bucket.
        """
        if self._server is not None:
            raise GeoTesseraError("the sample server is already running")
        with _active_lock:
            if self._bucket in _active_buckets:
                raise InvalidInputError(
                    f"bucket {self._bucket!r} is already served by another SampleServer in this process "
                    "(moto state is process-wide); stop it first or use another bucket name"
                )
            _active_buckets.add(self._bucket)
            self._registered = True
        try:
            server = _QuietMotoServer(self._host, self._requested_port)
            self._bucket_obj = create_bucket(self._bucket, self._region, _public_read_policy(self._bucket))
            server.start()
            self._server = server
            self._port = server.get_host_and_port()[1]
            _log.info("moto S3 endpoint listening on %s", self.endpoint_url)
            if self._root is not None:
                from .build import NON_STORE_ENTRIES

                self._add(self._root, "", NON_STORE_ENTRIES, self._prefixes, self._root / SIDECAR, None)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Delete the bucket and shut the server down. Idempotent."""
        server, self._server = self._server, None
        try:
            if self._bucket_obj is not None:
                try:
                    delete_bucket(self._bucket)
                except Exception as exc:  # the server is going away anyway
                    _log.warning("could not delete bucket %s before stopping: %s", self._bucket, exc)
            if server is not None:
                server.stop()
                _log.info("moto S3 endpoint on %s stopped", self.endpoint_url)
        finally:
            self._bucket_obj = None
            self._port = None
            self._served = UploadSummary(0, 0)
            if self._registered:
                with _active_lock:
                    _active_buckets.discard(self._bucket)
                self._registered = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- objects ----------------------------------------------------------------------------
    def add_tree(
        self,
        directory: StrPath,
        prefix: str = "",
        *,
        exclude: Collection[str] = (),
        progress: ProgressSink | None = None,
    ) -> UploadSummary:
        """Serve every file under ``directory`` as ``{prefix}/{relative posix path}``.

        Files are not read into memory: each object is served from its file. Their CRC64NVMe
        is computed here (streamed, 8 MiB at a time) and sent with GETs requested with
        ``x-amz-checksum-mode: ENABLED``. Top-level entries of ``directory`` named in
        ``exclude`` are skipped. ``progress`` (default: the server's sink) receives
        ``PlanReady`` and one ``ItemDone`` per object. An object of the same key is replaced.
        """
        if self._bucket_obj is None:
            raise GeoTesseraError("the sample server is not running; call start() first")
        directory = Path(directory)
        if not directory.is_dir():
            raise InvalidInputError(f"{str(directory)!r} is not a directory")
        return self._add(directory, prefix, exclude, None, None, progress)

    upload_tree = add_tree  # the name of earlier versions, when objects were uploaded into moto

    def _add(
        self,
        directory: Path,
        prefix: str,
        exclude: Collection[str],
        prefixes: dict[str, tuple[str, ...]] | None,
        sidecar: Path | None,
        progress: ProgressSink | None,
    ) -> UploadSummary:
        sink = progress if progress is not None else self._progress
        listed = list(iter_files(directory, exclude))
        if prefixes is not None:
            wanted = tuple(p for pre in prefixes.values() for p in pre)
            listed = [f for f in listed if f[0].startswith(wanted)]
        total = sum(st.st_size for *_, st in listed)
        emit(sink, PlanReady(items=len(listed), bytes=total, label="serve"))
        files: list[StoreFile] = checksums(directory, listed, sidecar=sidecar, workers=self._workers)
        for f in files:
            key = _object_key(prefix, f.rel)
            content_type = mimetypes.guess_type(f.path.name)[0] or "application/octet-stream"
            register_file(self._bucket_obj, key, f.path, f.size, f.crc64nvme, f.mtime, content_type)
            emit(sink, ItemDone(key=key, bytes=f.size))
        _log.info("serving %d files (%d bytes) from %s", len(files), total, directory)
        summary = UploadSummary(objects=len(files), bytes=total)
        self._served = UploadSummary(self._served.objects + summary.objects, self._served.bytes + total)
        return summary
