"""Which byte ranges a read of inner chunks needs: chunks -> merged requests of their shards.

Pure planning, no I/O: :func:`plan_requests` groups chunks by shard, looks their
``(offset, nbytes)`` up in the shard indexes, reports absent chunks, and merges chunks that
are close in the shard file into one request (gap at most :data:`MERGE_GAP_BYTES`, span at
most :data:`MAX_MERGED_BYTES`); :func:`join_requests` hands a shard's consecutive requests to
one task up to :data:`MAX_DECODED_BYTES` of decoded chunks (local stores, where a request
costs no waiting).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Final

import numpy as np
import numpy.typing as npt

from ..layout import EMPTY, ArrayLayout

MERGE_GAP_BYTES: Final = 64 * 1024
MAX_MERGED_BYTES: Final = 2 * 2**20
"""Bytes one request spans; with one request per worker in flight, this bounds memory."""
MAX_DECODED_BYTES: Final = 8 * 2**20
"""Decoded chunk bytes handed over at once (a 2 MiB request of well-compressed chunks may hold far more)."""

Chunk = tuple[int, ...]
Request = list[tuple[Chunk, int, int]]
"""One merged range: (chunk, offset, nbytes) by offset in the shard object."""
ShardIndexes = Callable[[list[Chunk]], list["npt.NDArray[np.uint64] | None"]]
"""Shard coordinates -> their (n_inner, 2) indexes (None: the shard is absent)."""


def chunks_per_call(layout: ArrayLayout) -> int:
    """Decoded inner chunks handed over at once (at least one): ``MAX_DECODED_BYTES`` of them."""
    return max(1, MAX_DECODED_BYTES // layout.inner_nbytes)


def plan_requests(
    layout: ArrayLayout,
    chunks: npt.NDArray[np.int64],
    shard_indexes: ShardIndexes,
    on_absent: Callable[[Chunk], None],
) -> Iterator[tuple[str, Request]]:
    """The merged requests ``(shard key, request)`` reading ``chunks`` (K, ndim) of a sharded array.

    ``on_absent(chunk)`` is called (here, while planning) for each chunk of an absent shard or
    with an empty index entry. Requests of one shard come out together, by offset.
    """
    per = np.asarray(layout.inner_per_shard, dtype=np.int64)
    shards: dict[Chunk, list[int]] = defaultdict(list)
    for i, s in enumerate(map(tuple, (chunks // per).tolist())):
        shards[s].append(i)
    keys = list(shards)
    for shard, index in zip(keys, shard_indexes(keys), strict=True):
        members = chunks[shards[shard]]
        if index is None:
            for c in members.tolist():
                on_absent(tuple(c))
            continue
        local = members - np.asarray(shard) * per
        ent = index[np.ravel_multi_index(tuple(local.T), layout.inner_per_shard)]  # (m, 2)
        absent = (ent[:, 0] == EMPTY) & (ent[:, 1] == EMPTY)
        if absent.any():
            for c in members[absent].tolist():
                on_absent(tuple(c))
            members, ent = members[~absent], ent[~absent]
        order = np.argsort(ent[:, 0], kind="stable")  # by offset in the shard
        key = layout.shard_key(shard)
        group: Request = []
        start = end = 0
        for c, off, n in zip(
            members[order].tolist(), ent[order, 0].tolist(), ent[order, 1].tolist(), strict=True
        ):
            if group and (off - end > MERGE_GAP_BYTES or off + n - start > MAX_MERGED_BYTES):
                yield key, group
                group = []
            if not group:
                start = off
            group.append((tuple(c), off, n))
            end = off + n
        if group:
            yield key, group


def join_requests(
    layout: ArrayLayout, plan: Iterable[tuple[str, Request]], join: bool
) -> Iterator[tuple[str, list[Request]]]:
    """The requests of ``plan``, one per task, or with ``join`` a shard's consecutive requests
    together, up to ``MAX_DECODED_BYTES`` of decoded chunks and as many bytes read."""
    if not join:
        for key, items in plan:
            yield key, [items]
        return
    per_task = chunks_per_call(layout)
    key0, n, nbytes = "", 0, 0
    batch: list[Request] = []
    for key, items in plan:
        span = max(o + c for _, o, c in items) - items[0][1]  # the bytes its request reads
        if batch and (key != key0 or n + len(items) > per_task or nbytes + span > MAX_DECODED_BYTES):
            yield key0, batch
            batch, n, nbytes = [], 0, 0
        key0 = key
        batch.append(items)
        n += len(items)
        nbytes += span
    if batch:
        yield key0, batch
