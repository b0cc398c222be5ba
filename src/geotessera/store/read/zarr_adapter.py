"""A read-only zarr-python store over a :class:`~geotessera.transfer.Source` (for xarray and the fallback).

It lets ``xarray.open_zarr`` and ``zarr.open_group`` read a store over plain
https / anonymous S3 without fsspec or aiohttp. Blocking reads run in
``asyncio.to_thread``; listing is not supported (stores carry consolidated metadata).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from ..._optional import require

require("zarr", "zarr")  # first: without the extra, a MissingExtraError naming it

from zarr.abc.store import (  # noqa: E402
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype  # noqa: E402

from ...errors import SourceError  # noqa: E402
from ...transfer import Source  # noqa: E402


def _or_none(read: Any, *args: Any) -> bytes | None:
    try:
        data: bytes = read(*args)
    except SourceError as exc:
        if exc.status == 404:  # absent: zarr reads the fill value
            return None
        raise
    return data


class SourceStore(Store):
    """Read-only zarr store reading keys through ``source`` (a missing key is absent; a 403 raises)."""

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = False

    def __init__(self, source: Source) -> None:
        super().__init__(read_only=True)
        self.source = source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceStore) and other.source.describe() == self.source.describe()

    def __hash__(self) -> int:
        return hash(self.source.describe())

    def _read(self, key: str, byte_range: ByteRequest | None) -> bytes | None:
        src = self.source
        if byte_range is None:
            return _or_none(src.read_bytes, key)
        if isinstance(byte_range, RangeByteRequest):
            return _or_none(src.get_range, key, byte_range.start, byte_range.end - byte_range.start)
        if isinstance(byte_range, OffsetByteRequest):
            data = _or_none(src.read_bytes, key)
            return None if data is None else data[byte_range.offset :]
        if isinstance(byte_range, SuffixByteRequest):
            return _or_none(src.get_suffix, key, byte_range.suffix)
        raise TypeError(f"unexpected byte range {byte_range!r}")

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        data = await asyncio.to_thread(self._read, key, byte_range)
        return None if data is None else prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self, prototype: BufferPrototype, key_ranges: Iterable[tuple[str, ByteRequest | None]]
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(lambda: _or_none(self.source.get_range, key, 0, 1) is not None)

    async def set(self, key: str, value: Buffer) -> None:
        raise PermissionError("this store is read-only")

    async def delete(self, key: str) -> None:
        raise PermissionError("this store is read-only")

    async def list(self) -> AsyncIterator[str]:
        raise NotImplementedError("listing is not supported; the store has consolidated metadata")
        yield ""  # pragma: no cover

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        raise NotImplementedError("listing is not supported; the store has consolidated metadata")
        yield ""  # pragma: no cover

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        raise NotImplementedError("listing is not supported; the store has consolidated metadata")
        yield ""  # pragma: no cover

    def __repr__(self) -> str:
        return f"SourceStore({self.source.describe()!r})"
