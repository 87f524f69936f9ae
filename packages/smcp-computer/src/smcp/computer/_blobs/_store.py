"""Blob download: the bounded toolspool, resolvers, ``client:get_blob`` chunks and the binary sideband."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import hashlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from smcp.computer._blobs._handles import decode_handle, encode_handle, invalid_handle
from smcp.core.errors import BlobNotAccessibleError
from smcp.core.results import SIDEBAND_HANDLE, SIDEBAND_SHA256, SIDEBAND_SIZE

__all__ = ["TOOLSPOOL_KIND", "BlobResolver", "BlobStore", "ResolvedBlob", "blob_error"]

logger = logging.getLogger("smcp.computer")

TOOLSPOOL_KIND = "toolspool"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_MAX_MIME_LENGTH = 255
_TMP_PREFIX = ".tmp-"


def blob_error(reason: str, why: str) -> BlobNotAccessibleError:
    """A 4018 error with ``details.reason`` and a message that says what happened."""
    return BlobNotAccessibleError(f"Blob not accessible: {why}", details={"reason": reason})


@dataclass(frozen=True, slots=True)
class ResolvedBlob:
    """What a resolver found for a handle: the whole resource's MIME, size and digest, and a reader.

    ``read(offset, length)`` returns the bytes ``[offset, offset + length)``; it runs in a worker
    thread and raises :class:`OSError` (``FileNotFoundError`` when the bytes are gone).
    """

    mime_type: str
    total_size: int
    sha256: str
    read: Callable[[int, int], bytes]


class BlobResolver(Protocol):
    """Turns the fields of a handle of one kind back into bytes, re-checking the minting channel's rules."""

    async def __call__(self, fields: Mapping[str, str]) -> ResolvedBlob:
        """Raise :class:`BlobNotAccessibleError` with reason ``invalid_handle``/``forbidden``/``gone``."""
        ...


def _read_file(path: Path) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    return read


class BlobStore:
    """Mints and serves blob handles (docs/protocol.md §13.1-§13.3).

    Binary tool output goes to a content-addressed spool directory (``<spool_dir>/<sha256>``) that
    is bounded by ``spool_max_bytes``: minting evicts the least recently minted files first.
    Other kinds of handles (``"skill"``) are served by resolvers registered with
    :meth:`register_resolver`. Handles are stateless and survive restarts while the bytes exist.
    """

    def __init__(
        self,
        spool_dir: Path,
        *,
        inline_budget: int = 32 * 1024,
        max_bytes: int = 100 * 1024 * 1024,
        chunk_bytes: int = 256 * 1024,
        spool_max_bytes: int = 1024**3,
    ) -> None:
        if chunk_bytes <= 0 or spool_max_bytes <= 0 or max_bytes <= 0 or inline_budget < 0:
            raise ValueError("blob limits must be positive")
        self.spool_dir = Path(spool_dir)
        self.inline_budget = inline_budget
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.spool_max_bytes = spool_max_bytes
        self._resolvers: dict[str, BlobResolver] = {TOOLSPOOL_KIND: self._resolve_toolspool}
        self._lock = threading.Lock()
        self._spool_size: int | None = None  # bytes in the spool; scanned on first mint

    # -- handles -------------------------------------------------------------------------------

    def register_resolver(self, kind: str, resolver: BlobResolver) -> None:
        """Serve handles of ``kind`` with ``resolver`` (e.g. ``"skill"`` from the skill registry)."""
        if kind == TOOLSPOOL_KIND:
            raise ValueError("the toolspool resolver is built in")
        self._resolvers[kind] = resolver

    def make_handle(self, kind: str, fields: Mapping[str, str]) -> str:
        """A handle of a registered ``kind``; its resolver receives ``fields`` back."""
        if kind not in self._resolvers:
            raise ValueError(f"no resolver registered for blob kind {kind!r}")
        return encode_handle(kind, fields)

    def mint(self, data: bytes, mime_type: str) -> str:
        """Store ``data`` in the spool and return its toolspool handle (blocking file I/O).

        Raises :class:`ValueError` when ``data`` is larger than ``max_bytes`` or the whole spool.
        """
        return self._mint(data, mime_type)[0]

    def _mint(self, data: bytes, mime_type: str) -> tuple[str, str]:
        size = len(data)
        if size > self.max_bytes or size > self.spool_max_bytes:
            raise ValueError(
                f"{size} bytes do not fit the blob spool (max {min(self.max_bytes, self.spool_max_bytes)})"
            )
        mime = mime_type if mime_type and len(mime_type) <= _MAX_MIME_LENGTH else "application/octet-stream"
        cid = hashlib.sha256(data).hexdigest()
        path = self.spool_dir / cid
        with self._lock:
            self._ensure_spool()
            assert self._spool_size is not None
            try:
                if path.stat().st_size == size:
                    os.utime(path)  # now the most recently minted
                    return encode_handle(TOOLSPOOL_KIND, {"c": cid, "m": mime}), cid
                self._spool_size -= path.stat().st_size
            except FileNotFoundError:
                pass
            self._evict(self.spool_max_bytes - size)
            tmp = self.spool_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except OSError:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            self._spool_size += size
        return encode_handle(TOOLSPOOL_KIND, {"c": cid, "m": mime}), cid

    def _ensure_spool(self) -> None:
        if self._spool_size is not None:
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        total = 0
        for entry in os.scandir(self.spool_dir):
            if entry.name.startswith(_TMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # left over by a crash mid-write
            elif entry.is_file(follow_symlinks=False) and _SHA256_HEX.match(entry.name):
                total += entry.stat().st_size
        self._spool_size = total

    def _evict(self, keep_at_most: int) -> None:
        assert self._spool_size is not None
        if self._spool_size <= keep_at_most:
            return
        files: list[tuple[int, str, int]] = []
        for entry in os.scandir(self.spool_dir):
            if entry.is_file(follow_symlinks=False) and _SHA256_HEX.match(entry.name):
                st = entry.stat()
                files.append((st.st_mtime_ns, entry.path, st.st_size))
        files.sort()
        total = sum(f[2] for f in files)
        for _, file_path, file_size in files:
            if total <= keep_at_most:
                break
            try:
                os.unlink(file_path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("blob spool: could not evict %s: %r", file_path, exc)
                continue
            total -= file_size
            logger.debug("blob spool: evicted %s (%d bytes)", file_path, file_size)
        self._spool_size = total

    async def _resolve_toolspool(self, fields: Mapping[str, str]) -> ResolvedBlob:
        cid, mime = fields.get("c"), fields.get("m")
        if set(fields) != {"c", "m"} or cid is None or mime is None or not _SHA256_HEX.match(cid):
            raise invalid_handle("malformed toolspool handle")
        if not mime or len(mime) > _MAX_MIME_LENGTH:
            raise invalid_handle("malformed toolspool handle")
        path = self.spool_dir / cid
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            raise blob_error(
                "gone", "the tool output was evicted from the spool; call the tool again"
            ) from None
        return ResolvedBlob(mime, size, cid, _read_file(path))

    # -- client:get_blob ----------------------------------------------------------------------------

    async def resolve(self, handle: str) -> ResolvedBlob:
        """Decode ``handle`` and run its kind's resolver (4018 on failure)."""
        kind, fields = decode_handle(handle)
        resolver = self._resolvers.get(kind)
        if resolver is None:
            raise invalid_handle(f"no resolver for handle kind {kind!r}")
        return await resolver(fields)

    async def get_chunk(
        self, handle: str, chunk_offset: int | None, max_chunk_bytes: int | None, req_id: str
    ) -> dict[str, Any]:
        """One chunk as a GetBlobRet wire dict (§13.2).

        Raises :class:`BlobNotAccessibleError` with reason ``invalid_handle``, ``forbidden``, ``gone``
        or ``range``.
        """
        blob = await self.resolve(handle)
        offset = 0 if chunk_offset is None else chunk_offset
        if type(offset) is not int or offset < 0 or offset > blob.total_size:
            raise blob_error(
                "range",
                f"chunk_offset {chunk_offset!r} is outside 0..{blob.total_size} (the blob's total_size)",
            )
        limit = self.chunk_bytes
        if type(max_chunk_bytes) is int and max_chunk_bytes > 0:
            limit = min(max_chunk_bytes, self.chunk_bytes)
        length = min(limit, blob.total_size - offset)
        data = b""
        if length > 0:
            try:
                data = await asyncio.to_thread(blob.read, offset, length)
            except FileNotFoundError:
                raise blob_error(
                    "gone", "the blob's bytes are no longer there; ask the producer again"
                ) from None
            except OSError as exc:
                raise blob_error("gone", f"the blob could not be read ({exc.strerror or exc})") from None
            if len(data) != length:
                raise blob_error("gone", "the blob changed while it was read; ask the producer again")
        return {
            "blob_handle": handle,
            "mime_type": blob.mime_type,
            "total_size": blob.total_size,
            "sha256": blob.sha256,
            "chunk_offset": offset,
            "eof": offset + len(data) == blob.total_size,
            "blob": base64.b64encode(data).decode("ascii"),
            "req_id": req_id,
        }

    # -- binary sideband ----------------------------------------------------------------------------

    def apply_sideband(self, result: dict[str, Any]) -> dict[str, Any]:
        """docs/protocol.md §13.3 on a CallToolResult wire dict: big binary items move into the spool.

        Returns a new result dict (``result`` itself is not modified). For each content item whose
        ``data`` or ``resource.blob`` decodes to more than ``inline_budget`` bytes (and at most
        ``max_bytes``) the inline field becomes ``""`` and ``_meta`` gets ``a2c_blob_handle``,
        ``a2c_total_size`` and ``a2c_sha256``. Blocking file I/O: call it from a worker thread when
        the event loop must not wait on the disk.
        """
        content = result.get("content")
        if not isinstance(content, list):
            return result
        out_items: list[Any] = []
        changed = False
        for item in content:
            new = self._sideband_item(item) if isinstance(item, dict) else None
            out_items.append(item if new is None else new)
            changed = changed or new is not None
        if not changed:
            return result
        out = dict(result)
        out["content"] = out_items
        return out

    def needs_sideband(self, result: dict[str, Any]) -> bool:
        """True when :meth:`apply_sideband` may move an item of ``result`` (no I/O: lengths only)."""
        content = result.get("content")
        if not isinstance(content, list):
            return False
        return any(
            (found := _binary_field(item)) is not None and self._may_exceed_budget(found[0])
            for item in content
            if isinstance(item, dict)
        )

    def _may_exceed_budget(self, encoded: str) -> bool:
        return len(encoded) * 3 // 4 > self.inline_budget  # base64 cannot decode to more than that

    def _sideband_item(self, item: dict[str, Any]) -> dict[str, Any] | None:
        found = _binary_field(item)
        if found is None or not self._may_exceed_budget(found[0]):
            return None
        encoded, mime, in_resource = found
        resource = item.get("resource")
        meta = item.get("_meta")
        if meta is not None and not isinstance(meta, dict):
            logger.warning(
                "tool result item has a non-object _meta; its %d base64 chars stay inline", len(encoded)
            )
            return None
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            logger.warning("tool result item carries invalid base64; left inline")
            return None
        if len(data) <= self.inline_budget:
            return None
        if len(data) > self.max_bytes:
            logger.warning(
                "tool result item of %d bytes exceeds the blob cap %d; left inline", len(data), self.max_bytes
            )
            return None
        mime_type = mime if isinstance(mime, str) and mime else "application/octet-stream"
        try:
            handle, digest = self._mint(data, mime_type)
        except (OSError, ValueError) as exc:
            logger.warning("could not spool a %d-byte tool result item, left inline: %r", len(data), exc)
            return None
        new = copy.copy(item)
        if in_resource and isinstance(resource, dict):
            new["resource"] = {**resource, "blob": ""}
        else:
            new["data"] = ""
        new["_meta"] = {
            **(meta if isinstance(meta, dict) else {}),
            SIDEBAND_HANDLE: handle,
            SIDEBAND_SIZE: len(data),
            SIDEBAND_SHA256: digest,
        }
        return new


def _binary_field(item: dict[str, Any]) -> tuple[str, Any, bool] | None:
    """The base64 text of a content item (``data`` or ``resource.blob``), its MIME type, and
    whether it sits in ``resource``; ``None`` for an item without binary data."""
    if isinstance(item.get("data"), str):
        return item["data"], item.get("mimeType"), False
    resource = item.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("blob"), str):
        return resource["blob"], resource.get("mimeType") or item.get("mimeType"), True
    return None
