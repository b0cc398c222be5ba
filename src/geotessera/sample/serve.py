"""Serve a sample store over a loopback S3 endpoint (moto), like the public Tessera bucket.

:class:`SampleServer` starts moto's ``ThreadedMotoServer`` on ``127.0.0.1`` (port 0 picks a
free port), creates the bucket ``tessera-embeddings`` with an anonymous public-read bucket
policy and uploads every file of a store directory with its CRC64NVMe checksum, so a client
sees what it sees on the real bucket (formats.md section 3): unsigned path-style GETs, HEADs
and listings, and ``x-amz-checksum-crc64nvme`` on responses requested with
``x-amz-checksum-mode: ENABLED``.

Facts worth knowing (see ``performance-notes.md``):

- moto keeps its state per process: two servers in one process cannot serve the same bucket
  at once (:meth:`SampleServer.start` refuses), and :meth:`SampleServer.stop` deletes the
  bucket so its memory is given back.
- moto would accept anonymous writes; this server answers them 403, as a public-read S3
  bucket does. Anonymous HEAD needs ``s3:HeadObject`` in the policy, which is granted.
- Ranged GETs carry no checksum (real S3 behaves the same).

Needs the ``sample`` extra (``moto[server]``, ``boto3``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import mimetypes
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .._optional import require
from ..errors import GeoTesseraError, InvalidInputError, SourceError
from ..progress import ItemDone, PlanReady, ProgressSink, emit
from ..transfer.checksum import crc64nvme_file
from ._moto import _QuietMotoServer

__all__ = ["DEFAULT_BUCKET", "DEFAULT_REGION", "SampleServer", "UploadSummary"]

_log = logging.getLogger(__name__)

DEFAULT_BUCKET = "tessera-embeddings"
DEFAULT_REGION = "us-west-2"

_UPLOAD_WORKERS = 4
# Dummy credentials for the signed uploader only; given to the boto3 client, never put in os.environ.
_DUMMY_KEY_ID = "geotessera-sample"
_DUMMY_SECRET = "geotessera-sample-secret"

# Buckets served by a running SampleServer in this process (moto's backends are process-wide).
_active_buckets: set[str] = set()
_active_lock = threading.Lock()

StrPath = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class UploadSummary:
    """What :meth:`SampleServer.upload_tree` put into the bucket: ``objects`` files, ``bytes`` bytes."""

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


def _iter_files(directory: Path, exclude: Collection[str]) -> Iterator[Path]:
    """Every regular file under ``directory`` (sorted), skipping top-level entries named in ``exclude``."""
    for top in sorted(directory.iterdir()):
        if top.name in exclude:
            continue
        if top.is_file():
            yield top
        elif top.is_dir():
            yield from sorted(p for p in top.rglob("*") if p.is_file())


def _object_key(prefix: str, rel: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel


class SampleServer:
    """A moto S3 endpoint on loopback serving a store directory as the public Tessera bucket.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with SampleServer("sample-store") as server:
            print(server.base_url)  # http://127.0.0.1:PORT/tessera-embeddings

    Args:
        root: store directory to upload at start (its top-level ``ground_truth`` and
            ``sample_store.json`` are not uploaded); ``None`` starts an empty bucket.
        port: TCP port; 0 (default) picks a free ephemeral port, read back by :attr:`port`.
        host: a loopback address (default ``127.0.0.1``); anything else raises
            :class:`~geotessera.errors.InvalidInputError`.
        bucket: bucket name (default ``tessera-embeddings``).
        region: bucket region (default ``us-west-2``, as the real bucket).
        upload_workers: threads uploading files (default 4).
        progress: optional sink receiving ``PlanReady``/``ItemDone`` events during uploads.
    """

    def __init__(
        self,
        root: StrPath | None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        bucket: str = DEFAULT_BUCKET,
        region: str = DEFAULT_REGION,
        upload_workers: int = _UPLOAD_WORKERS,
        progress: ProgressSink | None = None,
    ) -> None:
        self._host = _loopback_host(host)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidInputError(f"port must be an integer in 0..65535, got {port!r}")
        if upload_workers < 1:
            raise InvalidInputError(f"upload_workers must be >= 1, got {upload_workers!r}")
        self._root = None if root is None else Path(root)
        if self._root is not None and not self._root.is_dir():
            raise InvalidInputError(
                f"store directory {str(self._root)!r} does not exist or is not a directory"
            )
        self._requested_port = port
        self._bucket = bucket
        self._region = region
        self._workers = upload_workers
        self._progress = progress
        self._server: _QuietMotoServer | None = None
        self._client: Any = None
        self._port: int | None = None
        self._uploaded = UploadSummary(0, 0)
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
    def uploaded(self) -> UploadSummary:
        """Objects and bytes uploaded so far (by :meth:`start` and :meth:`upload_tree`)."""
        return self._uploaded

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the server, create the public-read bucket and upload the store directory.

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
            server.start()
            self._server = server
            self._port = server.get_host_and_port()[1]
            _log.info("moto S3 endpoint listening on %s", self.endpoint_url)
            self._client = self._make_client()
            self._create_bucket()
            if self._root is not None:
                from .build import NON_STORE_ENTRIES

                self.upload_tree(self._root, exclude=NON_STORE_ENTRIES)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Delete the bucket (freeing moto's memory) and shut the server down. Idempotent."""
        server, self._server = self._server, None
        try:
            if server is not None and self._client is not None:
                try:
                    self._delete_bucket()
                except Exception as exc:  # the server is going away anyway
                    _log.warning("could not empty bucket %s before stopping: %s", self._bucket, exc)
            if server is not None:
                server.stop()
                _log.info("moto S3 endpoint on %s stopped", self.endpoint_url)
        finally:
            self._client = None
            self._port = None
            self._uploaded = UploadSummary(0, 0)
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

    # -- uploads ----------------------------------------------------------------------------
    def upload_tree(
        self,
        directory: StrPath,
        prefix: str = "",
        *,
        exclude: Collection[str] = (),
        progress: ProgressSink | None = None,
    ) -> UploadSummary:
        """Upload every file under ``directory`` as ``{prefix}/{relative posix path}``.

        Each object carries its CRC64NVMe (computed while streaming the file, then sent with
        the object), so GETs with ``x-amz-checksum-mode: ENABLED`` return it. Files are streamed
        from disk by a few threads; none is read whole into memory. Top-level entries of
        ``directory`` named in ``exclude`` are skipped. ``progress`` (default: the server's sink)
        receives ``PlanReady`` and one ``ItemDone`` per object.
        """
        if self._client is None:
            raise GeoTesseraError("the sample server is not running; call start() first")
        directory = Path(directory)
        if not directory.is_dir():
            raise InvalidInputError(f"{str(directory)!r} is not a directory")
        sink = progress if progress is not None else self._progress
        files = list(_iter_files(directory, exclude))
        jobs = [(path, _object_key(prefix, path.relative_to(directory).as_posix())) for path in files]
        sizes = {path: path.stat().st_size for path in files}
        total = sum(sizes.values())
        emit(sink, PlanReady(items=len(jobs), bytes=total, label="upload"))
        _log.info("uploading %d files (%d bytes) from %s", len(jobs), total, directory)

        def put(job: tuple[Path, str]) -> None:
            path, key = job
            self._put_file(path, key)
            emit(sink, ItemDone(key=key, bytes=sizes[path]))

        self._run_all(put, jobs)
        summary = UploadSummary(objects=len(jobs), bytes=total)
        self._uploaded = UploadSummary(self._uploaded.objects + summary.objects, self._uploaded.bytes + total)
        return summary

    def _run_all(self, fn: Callable[[tuple[Path, str]], None], jobs: Iterable[tuple[Path, str]]) -> None:
        with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="sample-upload") as pool:
            for future in [pool.submit(fn, job) for job in jobs]:
                future.result()  # re-raise the first failure

    def _put_file(self, path: Path, key: str) -> None:
        require("botocore", "sample")
        from botocore.exceptions import BotoCoreError, ClientError

        crc = crc64nvme_file(path)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            with open(path, "rb") as body:
                response = self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    ChecksumAlgorithm="CRC64NVME",
                    ChecksumCRC64NVME=crc,
                )
        except (BotoCoreError, ClientError) as exc:
            raise SourceError(f"uploading {key!r} to the sample server failed: {exc}") from exc
        stored = response.get("ChecksumCRC64NVME")
        if stored != crc:
            raise SourceError(f"sample server stored {key!r} with CRC64NVMe {stored!r}, expected {crc!r}")

    # -- bucket set-up ----------------------------------------------------------------------
    def _make_client(self) -> Any:
        boto3 = require("boto3", "sample")
        require("botocore", "sample")
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self._region,
            aws_access_key_id=_DUMMY_KEY_ID,
            aws_secret_access_key=_DUMMY_SECRET,
            config=Config(
                s3={"addressing_style": "path"},
                max_pool_connections=max(10, self._workers),
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def _create_bucket(self) -> None:
        require("botocore", "sample")
        from botocore.exceptions import ClientError

        config = {} if self._region == "us-east-1" else {"LocationConstraint": self._region}
        try:
            self._client.create_bucket(Bucket=self._bucket, CreateBucketConfiguration=config)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise SourceError(f"creating bucket {self._bucket!r} failed: {exc}") from exc
            # Left over by a server of this process that was not stopped: start clean.
            _log.warning("bucket %s already existed in this process; emptying it", self._bucket)
            self._empty_bucket()
        self._client.put_bucket_policy(Bucket=self._bucket, Policy=_public_read_policy(self._bucket))

    def _empty_bucket(self) -> None:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})

    def _delete_bucket(self) -> None:
        self._empty_bucket()
        self._client.delete_bucket(Bucket=self._bucket)
