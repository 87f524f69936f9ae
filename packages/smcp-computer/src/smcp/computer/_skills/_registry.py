"""The skill registry: discovery, orphans, ``client:get_skills`` / ``client:get_skill``
(docs/protocol.md §12)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smcp.computer._blobs import BlobStore, ResolvedBlob, blob_error
from smcp.computer._resources import ResourceSource
from smcp.computer._skills._frontmatter import parse_frontmatter, strip_frontmatter
from smcp.computer._skills._mime import guess_mime, is_text_mime
from smcp.computer._skills._sandbox import DEFAULT_REL_PATH, SandboxError, resolve_in_package
from smcp.computer._skills._staging import SKILL_MD, StagedSkill, stage_source
from smcp.core.errors import (
    MCPServerNotFoundError,
    SkillNameInvalidError,
    SkillResourceNotAccessibleError,
)
from smcp.core.naming import parse_skill_name

if TYPE_CHECKING:
    from os import stat_result

__all__ = ["SKILL_BLOB_KIND", "SkillRegistry"]

logger = logging.getLogger("smcp.computer")

SKILL_BLOB_KIND = "skill"
_HASH_BLOCK = 1024 * 1024
_DIGEST_CACHE_SIZE = 256


@dataclass(slots=True)
class _Entry:
    ref: dict[str, Any]
    root: Path
    orphan: bool = False


@dataclass(frozen=True, slots=True)
class _View:
    mime: str
    size: int
    sha256: str
    data: bytes | None  # the consumed bytes when they are in memory (SKILL.md, small text)
    path: Path


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _optional_fields(ref: dict[str, Any], fm: Mapping[str, Any]) -> None:
    for key in ("license", "compatibility"):
        if fm.get(key) is not None:
            ref[key] = str(fm[key])
    allowed = fm.get("allowed-tools", fm.get("allowed_tools"))
    if allowed is not None:
        ref["allowed_tools"] = (
            [str(t) for t in allowed] if isinstance(allowed, list | tuple) else [str(allowed)]
        )
    tags = fm.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        ref["tags"] = list(tags)
    elif "tags" in fm:
        logger.debug("frontmatter tags %r is not a list of strings; omitted", tags)
    if isinstance(fm.get("metadata"), dict):
        ref["skill_metadata"] = fm["metadata"]


def _scan_user_dir(root: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """``(name, package dir, frontmatter)`` for each ``<root>/<skill>/SKILL.md`` (one level deep)."""
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or not (child / SKILL_MD).is_file():
            continue
        try:
            parse_skill_name(child.name)
            if ":" in child.name:
                raise ValueError(child.name)
        except ValueError:
            logger.error("user skill directory %s: name is not strict kebab-case; skipped", child)
            continue
        try:
            fm = parse_frontmatter((child / SKILL_MD).read_bytes())
        except OSError as exc:
            logger.error("user skill %s: SKILL.md unreadable (%s); skipped", child, exc)
            continue
        if not fm.get("description"):
            logger.error("user skill %s: frontmatter has no description; skipped", child)
            continue
        if fm.get("name") is not None and str(fm["name"]) != child.name:
            logger.debug(
                "user skill %s: frontmatter name %r differs; the directory name wins", child, fm["name"]
            )
        found.append((child.name, child.resolve(), fm))
    return found


class SkillRegistry:
    """Skills from user drop-in directories and MCP ``skill://`` resources (docs/protocol.md §12).

    User skills live in ``<home>/user/<skill>/`` and in each of ``user_dirs`` (read in place);
    MCP skills are staged to ``<home>/mcp/<bundle_id>/<skill>/``. :meth:`refresh` rescans both;
    skills whose source went away become orphans (hidden, 4014 on ``get_skill``) until they come
    back. Registers the ``"skill"`` blob resolver on ``blobs``; every resolution re-runs the
    registry and sandbox checks. Marketplace sources are not supported.
    """

    def __init__(
        self,
        home: Path,
        blobs: BlobStore,
        *,
        user_dirs: Sequence[Path] = (),
        inline_budget: int = 32 * 1024,
        max_size: int = 100 * 1024 * 1024,
        request_timeout: float = 30.0,
    ) -> None:
        self.home = Path(home).absolute()
        self.blobs = blobs
        self.user_dirs = [self.home / "user", *(Path(d).absolute() for d in user_dirs)]
        self.inline_budget = inline_budget
        self.max_size = max_size
        self.request_timeout = request_timeout
        self._entries: dict[str, _Entry] = {}
        self._refresh_lock = asyncio.Lock()
        self._digests: dict[tuple[str, int, int, int], str] = {}
        blobs.register_resolver(SKILL_BLOB_KIND, self._resolve_blob)

    # -- discovery ----------------------------------------------------------------------------------

    async def refresh(self, sources: Sequence[ResourceSource]) -> bool:
        """Rescan user directories and the ``skill://`` roots of ``sources``; True if the ref set changed."""
        async with self._refresh_lock:
            before = self.list_refs()
            fresh: dict[str, _Entry] = {}
            for user_root in self.user_dirs:
                for name, path, fm in await asyncio.to_thread(_scan_user_dir, user_root):
                    if name in fresh:
                        logger.error(
                            "user skill %r in %s collides with one found earlier; skipped", name, path
                        )
                        continue
                    ref: dict[str, Any] = {
                        "name": name,
                        "source": "user",
                        "path": str(path),
                        "description": str(fm["description"]),
                    }
                    _optional_fields(ref, fm)
                    fresh[name] = _Entry(ref, path)
            claimed = set(fresh)
            for source in sources:
                if not source.supports_resources:
                    continue
                try:
                    staged = await stage_source(
                        source,
                        self.home,
                        claimed,
                        max_size=self.max_size,
                        request_timeout=self.request_timeout,
                    )
                except Exception as exc:
                    logger.warning("skills of MCP server %s not refreshed: %r", source.bundle_id, exc)
                    continue
                for skill in staged:
                    fresh[f"mcp:{source.bundle_id}:{skill.skill}"] = self._mcp_entry(source.bundle_id, skill)
            for name, old in self._entries.items():
                if name not in fresh:
                    if not old.orphan:
                        logger.info("skill %s lost its source; now an orphan", name)
                    fresh[name] = _Entry(old.ref, old.root, orphan=True)
            self._entries = fresh
            return self.list_refs() != before

    @staticmethod
    def _mcp_entry(bundle_id: str, skill: StagedSkill) -> _Entry:
        ref: dict[str, Any] = {
            "name": f"mcp:{bundle_id}:{skill.skill}",
            "source": f"mcp:{bundle_id}",
            "path": str(skill.path),
            "description": str(skill.frontmatter["description"]),
            "uri": skill.root_uri,
        }
        _optional_fields(ref, skill.frontmatter)
        if skill.meta.get("version") is not None:
            ref["version"] = str(skill.meta["version"])
        return _Entry(ref, skill.path)

    def list_refs(self) -> list[dict[str, Any]]:
        """A2CSkillRef wire dicts of the active (non-orphan) skills, in discovery order."""
        return [dict(e.ref) for e in self._entries.values() if not e.orphan]

    # -- reading ------------------------------------------------------------------------------------

    def _digest(self, path: Path, st: stat_result) -> str:
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        cached = self._digests.get(key)
        if cached is not None:
            return cached
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(_HASH_BLOCK):
                h.update(block)
        digest = h.hexdigest()
        if len(self._digests) >= _DIGEST_CACHE_SIZE:
            self._digests.pop(next(iter(self._digests)))
        self._digests[key] = digest
        return digest

    def _view(self, root: Path, rel_path: str, cap: int | None) -> _View:
        """Sandbox-resolve and measure the consumed bytes (blocking; raises SandboxError/_TooLarge)."""
        path = resolve_in_package(root, rel_path)
        st = path.stat()
        if cap is not None and st.st_size > cap:
            raise _TooLarge(st.st_size)
        if path.name == SKILL_MD:
            body = strip_frontmatter(path.read_bytes())
            if cap is not None and len(body) > cap:
                raise _TooLarge(len(body))
            return _View("text/markdown", len(body), hashlib.sha256(body).hexdigest(), body, path)
        mime = guess_mime(path.name)
        if is_text_mime(mime) and st.st_size <= self.inline_budget:
            data = path.read_bytes()
            return _View(mime, len(data), hashlib.sha256(data).hexdigest(), data, path)
        return _View(mime, st.st_size, self._digest(path, st), None, path)

    async def get_skill(self, name: str, rel_path: str | None, req_id: str) -> dict[str, Any]:
        """GetSkillRet wire dict, or raises 4016 (bad name), 4014 (not registered), 4017 (not accessible)."""
        try:
            parse_skill_name(name)
        except ValueError:
            raise SkillNameInvalidError(details={"name": name}) from None
        entry = self._entries.get(name)
        if entry is None or entry.orphan:
            raise MCPServerNotFoundError("Skill not found", details={"name": name})
        rel = rel_path or DEFAULT_REL_PATH
        try:
            view = await asyncio.to_thread(self._view, entry.root, rel, self.max_size)
        except SandboxError as exc:
            raise SkillResourceNotAccessibleError(details={"reason": exc.reason, "rel_path": rel}) from None
        except _TooLarge as exc:
            raise SkillResourceNotAccessibleError(
                details={"reason": "too_large", "rel_path": rel, "total_size": exc.size}
            ) from None
        except OSError as exc:
            logger.warning("skill %s: reading %s failed: %r", name, rel, exc)
            raise SkillResourceNotAccessibleError(details={"reason": "not_found", "rel_path": rel}) from None
        ret: dict[str, Any] = {
            "name": name,
            "rel_path": rel,
            "mime_type": view.mime,
            "total_size": view.size,
            "sha256": view.sha256,
        }
        body: str | None = None
        if view.data is not None and is_text_mime(view.mime) and view.size <= self.inline_budget:
            try:
                body = view.data.decode("utf-8")
            except UnicodeDecodeError:
                body = None
        if body is not None:
            ret["body"] = body
        else:
            ret["blob_handle"] = self.blobs.make_handle(SKILL_BLOB_KIND, {"n": name, "p": rel})
        ret["req_id"] = req_id
        return ret

    async def _resolve_blob(self, fields: Mapping[str, str]) -> ResolvedBlob:
        name, rel = fields.get("n"), fields.get("p")
        if set(fields) != {"n", "p"} or name is None or rel is None:
            raise blob_error("invalid_handle", "malformed skill handle")
        try:
            parse_skill_name(name)
        except ValueError:
            raise blob_error("invalid_handle", "malformed skill handle") from None
        entry = self._entries.get(name)
        if entry is None:
            raise blob_error("gone", f"skill {name!r} is no longer installed; call get_skills again")
        if entry.orphan:
            raise blob_error("forbidden", f"skill {name!r} lost its source and is unavailable")
        try:
            view = await asyncio.to_thread(self._view, entry.root, rel, None)
        except SandboxError as exc:
            if exc.reason == "not_found":
                raise blob_error(
                    "gone", f"{rel!r} no longer exists in skill {name!r}; call get_skill again"
                ) from None
            raise blob_error("forbidden", f"{rel!r} is not readable in skill {name!r}") from None
        except OSError as exc:
            raise blob_error("gone", f"{rel!r} of skill {name!r} could not be read ({exc})") from None
        return ResolvedBlob(view.mime, view.size, view.sha256, self._reader(view))

    @staticmethod
    def _reader(view: _View) -> Callable[[int, int], bytes]:
        data = view.data
        if data is not None:
            return lambda offset, length: data[offset : offset + length]
        path = view.path

        def read(offset: int, length: int) -> bytes:
            with path.open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)

        return read
