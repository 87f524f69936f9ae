"""Chunked blob download (with resume and integrity check), upload sessions, and the restore of
binary content a Computer moved to a blob (docs/protocol.md §13)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smcp.core.errors import (
    ConnectionLostError,
    IntegrityError,
    LocalTimeoutError,
    MalformedReplyError,
    SMCPError,
)
from smcp.core.results import SIDEBAND_HANDLE, SIDEBAND_SHA256, SIDEBAND_SIZE

if TYPE_CHECKING:
    from smcp.core.models import GetBlobRet, PutBlobRet

logger = logging.getLogger("smcp.agent")

#: Largest chunk a Computer sends or accepts (keeps base64 + envelope under 1 MB frames).
CHUNK_BYTES = 256 * 1024
#: How often a download restarts from 0 when the blob changes underneath it.
MAX_RESTARTS = 3
#: How often one chunk is retried after a timeout or a lost connection (resume at the same offset).
MAX_CHUNK_RETRIES = 3

Progress = Callable[[int, int], Any]
"""``progress(done_bytes, total_bytes)``; may be sync or async."""


@dataclass(frozen=True, slots=True)
class BlobData:
    """A fully downloaded and verified blob."""

    data: bytes
    mime_type: str
    sha256: str

    @property
    def total_size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class PutBlobResult:
    """The outcome of an upload: where the Computer stored the bytes."""

    landing_path: str
    total_size: int
    sha256: str
    upload_id: str


async def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is None:
        return
    ret = progress(done, total)
    if hasattr(ret, "__await__"):
        await ret


async def drain(
    fetch: Callable[[int], Awaitable[GetBlobRet]], *, progress: Progress | None = None
) -> BlobData:
    """Download a whole blob with ``fetch(offset)``; verify size and digest.

    A timeout or a dropped connection retries the same offset (resume); a blob whose
    declared size/digest changes between chunks, or whose bytes do not match, is read again
    from offset 0 (at most :data:`MAX_RESTARTS` times).
    """
    last_problem = ""
    for _attempt in range(MAX_RESTARTS):
        buf = bytearray()
        declared: tuple[int, str] | None = None
        mime = "application/octet-stream"
        offset = 0
        restart = False
        while True:
            chunk = await _fetch_with_resume(fetch, offset)
            if declared is None:
                declared = (chunk.total_size, chunk.sha256.lower())
                mime = chunk.mime_type
                if chunk.total_size < 0:
                    raise MalformedReplyError(f"blob declares a negative size {chunk.total_size}")
            elif (chunk.total_size, chunk.sha256.lower()) != declared:
                last_problem = "the blob changed while it was being read"
                restart = True
                break
            if chunk.chunk_offset != offset:
                raise MalformedReplyError(f"asked for offset {offset}, got a chunk at {chunk.chunk_offset}")
            try:
                piece = base64.b64decode(chunk.blob, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedReplyError(
                    f"blob chunk at offset {offset} is not valid base64: {exc}"
                ) from None
            buf += piece
            offset += len(piece)
            if offset > declared[0]:
                last_problem = f"received {offset} bytes, more than the declared {declared[0]}"
                restart = True
                break
            await _report(progress, offset, declared[0])
            if chunk.eof:
                break
            if not piece:
                raise MalformedReplyError(
                    f"empty chunk at offset {offset} without eof; the Computer is misbehaving"
                )
        if restart:
            logger.info("restarting blob download: %s", last_problem)
            continue
        assert declared is not None
        digest = hashlib.sha256(buf).hexdigest()
        if len(buf) == declared[0] and digest == declared[1]:
            return BlobData(bytes(buf), mime, digest)
        last_problem = (
            f"got {len(buf)} bytes with sha256 {digest}, "
            f"expected {declared[0]} bytes with sha256 {declared[1]}"
        )
        logger.info("restarting blob download: %s", last_problem)
    raise IntegrityError(f"blob download failed after {MAX_RESTARTS} attempts: {last_problem}")


async def _fetch_with_resume(fetch: Callable[[int], Awaitable[GetBlobRet]], offset: int) -> GetBlobRet:
    for attempt in range(MAX_CHUNK_RETRIES + 1):
        try:
            return await fetch(offset)
        except (LocalTimeoutError, ConnectionLostError) as exc:
            if attempt == MAX_CHUNK_RETRIES:
                raise
            logger.info("blob chunk at offset %d failed (%s); retrying", offset, exc)
    raise AssertionError("unreachable")


async def pump(
    send: Callable[[dict[str, Any]], Awaitable[PutBlobRet]],
    data: bytes,
    *,
    name_hint: str | None = None,
    chunk_size: int = CHUNK_BYTES,
    progress: Progress | None = None,
) -> PutBlobResult:
    """Upload ``data`` as one ``client:put_blob`` session, one acknowledged chunk at a time."""
    if not data:
        raise ValueError("put_blob needs at least one byte")
    chunk_size = max(1, min(chunk_size, CHUNK_BYTES))
    digest = hashlib.sha256(data).hexdigest()
    total = len(data)
    upload_id: str | None = None
    offset = 0
    final: PutBlobRet | None = None
    while offset < total or final is None:
        piece = data[offset : offset + chunk_size]
        eof = offset + len(piece) >= total
        fields: dict[str, Any] = {
            "chunk_offset": offset,
            "eof": eof,
            "blob": base64.b64encode(piece).decode("ascii"),
        }
        if upload_id is None:
            fields["total_size"] = total
            fields["sha256"] = digest
            if name_hint:
                fields["name_hint"] = name_hint
        else:
            fields["upload_id"] = upload_id
        ack = await send(fields)
        if upload_id is None:
            upload_id = ack.upload_id
        elif ack.upload_id != upload_id:
            raise MalformedReplyError(f"upload id changed from {upload_id!r} to {ack.upload_id!r}")
        offset += len(piece)
        await _report(progress, offset, total)
        if eof:
            final = ack
    if final.landing_path is None:
        raise MalformedReplyError("the final put_blob ack has no landing_path")
    if final.sha256 is not None and final.sha256.lower() != digest:
        raise IntegrityError(f"the Computer stored sha256 {final.sha256}, we sent {digest}")
    if final.total_size is not None and final.total_size != total:
        raise IntegrityError(f"the Computer stored {final.total_size} bytes, we sent {total}")
    assert upload_id is not None
    return PutBlobResult(final.landing_path, total, digest, upload_id)


#: The ``_meta`` keys of a content item whose binary field travels as a blob.
SIDEBAND_KEYS = (SIDEBAND_HANDLE, SIDEBAND_SIZE, SIDEBAND_SHA256)


async def restore_sideband(reply: dict[str, Any], download: Callable[[str], Awaitable[BlobData]]) -> None:
    """Put the bytes of every sideband content item of a tool-call ``reply`` back in place.

    An item whose ``_meta`` names a blob handle gets its ``data`` (image, audio) or
    ``resource.blob`` back from ``download(handle)``, and loses the sideband keys. An item whose
    blob cannot be fetched keeps its handle (logged).
    """
    for item in reply.get("content") or ():
        if not isinstance(item, dict):
            continue
        meta = item.get("_meta")
        if not isinstance(meta, dict):
            continue
        handle = meta.get(SIDEBAND_HANDLE)
        if not isinstance(handle, str) or not handle:
            continue
        try:
            blob = await download(handle)
        except (
            SMCPError,
            IntegrityError,
            MalformedReplyError,
            LocalTimeoutError,
            ConnectionLostError,
        ) as exc:
            logger.warning("could not fetch the binary content %s: %s; left as a handle", handle[:16], exc)
            continue
        encoded = base64.b64encode(blob.data).decode("ascii")
        resource = item.get("resource")
        if item.get("type") in ("image", "audio") or "data" in item or not isinstance(resource, dict):
            item["data"] = encoded
        else:
            resource["blob"] = encoded
        for key in SIDEBAND_KEYS:
            meta.pop(key, None)
        if not meta:
            del item["_meta"]
