"""``client:put_blob`` upload sessions (docs/protocol.md §13.4)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smcp.core.errors import BlobWriteFailedError

if TYPE_CHECKING:
    from smcp.core.models import PutBlobReq

__all__ = ["UPLOAD_DIR", "UploadStore", "parse_put_blob", "sanitize_name_hint"]

logger = logging.getLogger("smcp.computer")

UPLOAD_DIR = ".a2c-upload"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE_HINT = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_HINT = 64


def sanitize_name_hint(hint: str | None) -> str:
    """A file-name-safe suffix: runs of other chars than ``[A-Za-z0-9._-]`` become ``_``, at most
    64 chars, leading/trailing ``._-`` stripped (may be ``""``)."""
    if not hint:
        return ""
    return _UNSAFE_HINT.sub("_", hint)[:_MAX_HINT].strip("._-")


def _fail(reason: str, message: str, **details: Any) -> BlobWriteFailedError:
    return BlobWriteFailedError(message, details={"reason": reason, **details})


_DECLARATION = frozenset({"total_size", "sha256", "name_hint"})
#: ``details.reason`` of a request field that does not validate (docs/protocol.md §13.4).
_FIELD_REASON = {"upload_id": "invalid_upload", "chunk_offset": "range"}


def parse_put_blob(data: object) -> PutBlobReq:
    """Validate a ``client:put_blob`` request as core's ``PutBlobReq``, strictly (a boolean or
    string ``total_size`` is an ``invalid_declaration``, as the protocol says); raises 4019."""
    from pydantic import ValidationError

    from smcp.core.models import PutBlobReq

    if not isinstance(data, Mapping):
        raise _fail("invalid_declaration", "client:put_blob: expected a JSON object")
    try:
        return PutBlobReq.model_validate(data, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field_name = ".".join(str(part) for part in first["loc"]) or "<payload>"
        raise _fail(
            _FIELD_REASON.get(field_name, "invalid_declaration"),
            f"client:put_blob: field '{field_name}': {first['msg']}",
        ) from None


@dataclass(eq=False)
class _Session:
    upload_id: str
    total_size: int
    sha256: str
    hint: str
    part: Path
    received: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)
    last_seen: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


class UploadStore:
    """Receives ``client:put_blob`` uploads into ``landing_root`` (docs/protocol.md §13.4).

    Chunks arrive in order; bytes go to ``<landing_root>/.a2c-upload/<upload_id>.part`` with an
    incremental SHA-256, and the final chunk fsyncs, verifies the declared digest and renames the
    file atomically to ``<landing_root>/<upload_id>[_<hint>]``. At most ``max_concurrent`` uploads
    are open; one idle for more than ``idle_timeout`` seconds is dropped. ``landing_root=None``
    refuses every upload with reason ``forbidden``. All file I/O runs in worker threads.
    """

    def __init__(
        self,
        landing_root: Path | None,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        max_concurrent: int = 4,
        idle_timeout: float = 120.0,
    ) -> None:
        self.landing_root = Path(landing_root).absolute() if landing_root is not None else None
        self.max_bytes = max_bytes
        self.max_concurrent = max_concurrent
        self.idle_timeout = idle_timeout
        self._sessions: dict[str, _Session] = {}
        self._table_lock = asyncio.Lock()

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    async def put_chunk(self, req: PutBlobReq | Mapping[str, Any]) -> dict[str, Any]:
        """PutBlobRet wire dict, or raises BlobWriteFailedError(details={"reason": ..., ...}).

        A raw request dict is validated with :func:`parse_put_blob` first.
        """
        chunk = req if not isinstance(req, Mapping) else parse_put_blob(req)
        async with self._table_lock:
            await self._expire_idle()
            if chunk.upload_id is None:
                session = await self._open(chunk)
            else:
                found = self._sessions.get(chunk.upload_id)
                if found is None:
                    raise _fail(
                        "invalid_upload",
                        "Unknown or expired upload_id; start again with a first chunk (no upload_id)",
                        upload_id=chunk.upload_id,
                    )
                session = found
                if _DECLARATION & chunk.model_fields_set:
                    raise _fail(
                        "invalid_declaration",
                        "total_size, sha256 and name_hint belong to the first chunk only",
                        upload_id=session.upload_id,
                    )
            session.last_seen = time.monotonic()
        async with session.lock:
            try:
                return await self._write(session, chunk)
            finally:
                session.last_seen = time.monotonic()

    async def close(self) -> None:
        """Drop every open upload and delete its partial file."""
        async with self._table_lock:
            for session in list(self._sessions.values()):
                await self._drop(session)

    # -- internals ------------------------------------------------------------------------------

    async def _open(self, chunk: PutBlobReq) -> _Session:
        if self.landing_root is None:
            raise _fail(
                "forbidden", "Upload refused: landing root not configured on this Computer (landingRoot)"
            )
        size = chunk.total_size
        if type(size) is not int or size < 1:
            raise _fail("invalid_declaration", "The first chunk must declare total_size as an integer >= 1")
        digest = chunk.sha256
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
            raise _fail(
                "invalid_declaration", "The first chunk must declare sha256 as 64 lowercase hex chars"
            )
        if size > self.max_bytes:
            raise _fail(
                "too_large",
                f"Upload of {size} bytes exceeds the limit of {self.max_bytes} bytes",
                total_size=size,
            )
        if len(self._sessions) >= self.max_concurrent:
            raise _fail(
                "busy", f"{self.max_concurrent} uploads are already open; retry when one has finished"
            )
        hint = sanitize_name_hint(chunk.name_hint)
        upload_id = uuid.uuid4().hex
        part = self.landing_root / UPLOAD_DIR / f"{upload_id}.part"

        def create() -> None:
            part.parent.mkdir(parents=True, exist_ok=True)
            with part.open("xb"):
                pass

        try:
            await asyncio.to_thread(create)
        except OSError as exc:
            logger.warning("put_blob: cannot create %s: %r", part, exc)
            raise _fail("forbidden", "Upload refused: landing root not writable") from None
        session = _Session(upload_id, size, digest, hint, part)
        self._sessions[upload_id] = session
        return session

    async def _drop(self, session: _Session) -> None:
        self._sessions.pop(session.upload_id, None)
        session.closed = True
        with contextlib.suppress(OSError):
            await asyncio.to_thread(session.part.unlink, True)

    async def _expire_idle(self) -> None:
        now = time.monotonic()
        for session in list(self._sessions.values()):
            if not session.lock.locked() and now - session.last_seen > self.idle_timeout:
                logger.info(
                    "put_blob: upload %s idle for %.0f s, dropped", session.upload_id, now - session.last_seen
                )
                await self._drop(session)

    async def _write(self, session: _Session, chunk: PutBlobReq) -> dict[str, Any]:
        uid = session.upload_id
        if session.closed:
            raise _fail("invalid_upload", "The upload was dropped; start again from offset 0", upload_id=uid)
        offset = chunk.chunk_offset
        if offset != session.received:
            raise _fail(
                "range", f"chunk_offset must be {session.received} (bytes received so far)", upload_id=uid
            )
        try:
            data = base64.b64decode(chunk.blob, validate=True)
        except (binascii.Error, ValueError):
            raise _fail("invalid_declaration", "blob is not valid base64", upload_id=uid) from None
        end = offset + len(data)
        if end > session.total_size:
            async with self._table_lock:
                await self._drop(session)
            raise _fail(
                "range",
                f"chunk ends at {end}, past the declared total_size {session.total_size}; upload dropped",
                upload_id=uid,
            )
        eof = chunk.eof
        if eof and end != session.total_size:
            raise _fail(
                "range",
                f"last chunk ends at {end} but total_size is {session.total_size}; send the missing bytes",
                upload_id=uid,
            )

        def append() -> None:
            with session.part.open("r+b") as fh:
                fh.seek(offset)
                fh.write(data)
                fh.truncate()

        try:
            if data:
                await asyncio.to_thread(append)
        except OSError as exc:
            logger.warning("put_blob: writing %s failed: %r", session.part, exc)
            async with self._table_lock:
                await self._drop(session)
            raise _fail("io_error", "Writing the upload failed; start again", upload_id=uid) from None
        session.hasher.update(data)
        session.received = end
        if not eof:
            return {"upload_id": uid, "chunk_offset": offset, "req_id": chunk.req_id}
        return await self._finish(session, offset, chunk.req_id)

    async def _finish(self, session: _Session, offset: int, req_id: str) -> dict[str, Any]:
        uid = session.upload_id
        assert self.landing_root is not None

        def fsync() -> None:
            fd = os.open(session.part, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        try:
            await asyncio.to_thread(fsync)
        except OSError as exc:
            logger.warning("put_blob: fsync of %s failed: %r", session.part, exc)
            async with self._table_lock:
                await self._drop(session)
            raise _fail(
                "io_error", "Flushing the upload to disk failed; start again", upload_id=uid
            ) from None
        actual = session.hasher.hexdigest()
        if actual != session.sha256:
            async with self._table_lock:
                await self._drop(session)
            raise _fail(
                "integrity",
                f"sha256 of the received bytes is {actual}, not the declared {session.sha256}; dropped",
                upload_id=uid,
            )
        name = f"{uid}_{session.hint}" if session.hint else uid
        target = self.landing_root / name
        try:
            await asyncio.to_thread(os.replace, session.part, target)
        except OSError as exc:
            logger.warning("put_blob: moving %s to %s failed: %r", session.part, target, exc)
            async with self._table_lock:
                await self._drop(session)
            raise _fail("io_error", "Moving the upload into the landing root failed", upload_id=uid) from None
        async with self._table_lock:
            self._sessions.pop(uid, None)
            session.closed = True
        return {
            "upload_id": uid,
            "chunk_offset": offset,
            "req_id": req_id,
            "landing_path": str(target),
            "total_size": session.received,
            "sha256": actual,
        }
