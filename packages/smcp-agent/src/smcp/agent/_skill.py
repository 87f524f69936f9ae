"""One file of a skill package (docs/protocol.md §12): inline or drained from its blob, then checked."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smcp.core.errors import IntegrityError

if TYPE_CHECKING:
    from smcp.agent._blob import BlobData
    from smcp.core.models import GetSkillRet

__all__ = ["SkillFile", "load_skill_file"]


@dataclass(frozen=True, slots=True)
class SkillFile:
    """One file of a skill package, fully loaded and checked against its ``sha256``."""

    name: str
    rel_path: str
    mime_type: str
    sha256: str
    data: bytes

    @property
    def total_size(self) -> int:
        return len(self.data)

    @property
    def text(self) -> str:
        """The content decoded as UTF-8 (raises ``UnicodeDecodeError`` for binary files)."""
        return self.data.decode("utf-8")


async def load_skill_file(ret: GetSkillRet, download: Callable[[str], Awaitable[BlobData]]) -> SkillFile:
    """The file a ``get_skill`` reply describes: its inline body, or its blob via ``download``.

    Raises :class:`IntegrityError` when the bytes do not match the declared size or sha256.
    """
    declared = ret.sha256.lower()
    if ret.body is not None:
        raw = ret.body.encode("utf-8")
        digest = hashlib.sha256(raw).hexdigest()
        if digest != declared:
            raise IntegrityError(
                f"skill {ret.name!r} {ret.rel_path}: body sha256 {digest} != declared {ret.sha256}"
            )
    else:
        assert ret.blob_handle is not None  # the reply model requires one of body and blob_handle
        blob = await download(ret.blob_handle)
        if blob.sha256 != declared or blob.total_size != ret.total_size:
            raise IntegrityError(
                f"skill {ret.name!r} {ret.rel_path}: blob does not match the declared size/sha256"
            )
        raw = blob.data
    return SkillFile(ret.name, ret.rel_path, ret.mime_type, declared, raw)
