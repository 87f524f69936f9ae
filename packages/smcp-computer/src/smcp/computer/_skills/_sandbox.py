"""Resolving ``rel_path`` inside a skill package without leaving it (docs/protocol.md §12.3 step 3)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

__all__ = ["DEFAULT_REL_PATH", "FORBIDDEN_NAMES", "SandboxError", "resolve_in_package"]

DEFAULT_REL_PATH = "SKILL.md"
FORBIDDEN_NAMES = frozenset({".skillenv"})


class SandboxError(Exception):
    """``reason`` is one of ``traversal``, ``forbidden``, ``not_found``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _lexical(rel_path: str) -> PurePosixPath:
    if "\\" in rel_path or "\x00" in rel_path or rel_path.startswith("/"):
        raise SandboxError("traversal")
    pure = PurePosixPath(rel_path)
    if pure.is_absolute() or any(part == ".." or ":" in part for part in rel_path.split("/")):
        raise SandboxError("traversal")
    return pure


def resolve_in_package(root: Path, rel_path: str) -> Path:
    """The real path of ``rel_path`` under ``root`` (an existing regular file), or :class:`SandboxError`.

    Order: lexical checks (backslash, absolute, ``..``, ``:``) => traversal; a ``.skillenv``
    basename => forbidden before touching the file system; realpath outside the real root =>
    traversal; the resolved basename is checked for ``.skillenv`` again; not a regular file =>
    not_found. Blocking: run it in a worker thread.
    """
    pure = _lexical(rel_path)
    if pure.name.lower() in FORBIDDEN_NAMES:
        raise SandboxError("forbidden")
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / pure))
    if target != real_root and real_root not in target.parents:
        raise SandboxError("traversal")
    if target.name.lower() in FORBIDDEN_NAMES:
        raise SandboxError("forbidden")
    if not target.is_file():
        raise SandboxError("not_found")
    return target
