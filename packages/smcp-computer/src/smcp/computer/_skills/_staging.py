"""Staging ``skill://`` skill packages of an MCP server under ``<home>/mcp/<bundle_id>/<skill>/`` (§12.2)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from smcp.computer._resources import ResourceSource, list_all_resources
from smcp.computer._skills._frontmatter import parse_frontmatter
from smcp.core.naming import parse_skill_name

if TYPE_CHECKING:
    import mcp_types

__all__ = ["SKILL_SCHEME", "StagedSkill", "stage_source"]

logger = logging.getLogger("smcp.computer")

SKILL_SCHEME = "skill://"
SKILL_MD = "SKILL.md"
_MODES = frozenset({"mounted", "archive", "resources"})


class _StagingError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StagedSkill:
    skill: str  # frontmatter name (strict kebab)
    path: Path
    root_uri: str
    frontmatter: dict[str, Any]
    meta: dict[str, Any]


def _uri_path(uri: str) -> str:
    return uri[len(SKILL_SCHEME) :].partition("/")[2]


def _roots(resources: Sequence[mcp_types.Resource]) -> list[mcp_types.Resource]:
    """Resources declaring ``_meta.source``, minus those lying under another such root."""
    candidates = [r for r in resources if (r.meta or {}).get("source") in _MODES]
    uris = [str(r.uri) for r in candidates]
    out = []
    for res in candidates:
        uri = str(res.uri)
        covering = [u for u in uris if u != uri and _uri_path(u) and uri.startswith(u + "/")]
        if covering:
            logger.info(
                "skill resource %s lies under skill root %s; not a root itself", uri, max(covering, key=len)
            )
            continue
        out.append(res)
    return out


def _safe_rel(rel: str) -> Path:
    parts = [unquote(p) for p in rel.split("/")]
    if not parts or any(p in ("", ".", "..") or "/" in p or "\\" in p or "\x00" in p for p in parts):
        raise _StagingError(f"unsafe child path {rel!r}")
    return Path(*parts)


def _content_bytes(item: mcp_types.TextResourceContents | mcp_types.BlobResourceContents) -> bytes:
    text = getattr(item, "text", None)
    if isinstance(text, str):
        return text.encode("utf-8")
    try:
        return base64.b64decode(getattr(item, "blob", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _StagingError("child resource carries invalid base64") from None


async def _stage_resources(
    source: ResourceSource,
    *,
    root_uri: str,
    resources: Sequence[mcp_types.Resource],
    dest: Path,
    max_size: int,
    request_timeout: float,
) -> None:
    total = 0
    wrote = False
    for res in resources:
        uri = str(res.uri)
        if not uri.startswith(root_uri + "/"):
            continue
        rel = _safe_rel(uri[len(root_uri) + 1 :])
        contents = await asyncio.wait_for(source.read_resource(uri), request_timeout)
        data = b"".join(_content_bytes(c) for c in contents)
        total += len(data)
        if total > max_size:
            raise _StagingError(f"skill is larger than {max_size} bytes")
        target = dest / rel

        def write(target: Path = target, data: bytes = data) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        await asyncio.to_thread(write)
        wrote = True
    if not wrote:
        raise _StagingError("no child skill:// resources under the root")


def _copy_mounted(meta: dict[str, Any], dest: Path) -> None:
    mount_dir = meta.get("mount_dir")
    if not isinstance(mount_dir, str) or not mount_dir or not Path(mount_dir).is_dir():
        raise _StagingError(f"mounted skill has no readable mount_dir ({mount_dir!r})")

    def ignore_links(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if (Path(directory) / n).is_symlink()]

    shutil.copytree(mount_dir, dest, symlinks=False, ignore=ignore_links)


async def stage_source(
    source: ResourceSource, home: Path, claimed: set[str], *, max_size: int, request_timeout: float = 30.0
) -> list[StagedSkill]:
    """Stage every skill root of ``source``; returns the skills that staged and validated.

    ``claimed`` holds the synthesized names already taken in this refresh; a colliding skill is
    skipped (first one wins). Problems with single skills are logged and skipped.
    """
    bundle = source.bundle_id
    resources = [
        r
        for r in await list_all_resources(source, request_timeout=request_timeout)
        if str(r.uri).startswith(SKILL_SCHEME)
    ]
    base = home / "mcp" / bundle
    staged: list[StagedSkill] = []
    for root in _roots(resources):
        root_uri = str(root.uri)
        meta = dict(root.meta or {})
        mode = meta.get("source")
        if not _uri_path(root_uri):
            logger.error("skill root %s of %s has no path; skipped", root_uri, bundle)
            continue
        if mode == "archive":
            logger.warning(
                "skill root %s of %s uses source=archive, which is not supported; skipped", root_uri, bundle
            )
            continue
        tmp = base / f".staging-{uuid.uuid4().hex}"
        try:
            await asyncio.to_thread(tmp.parent.mkdir, parents=True, exist_ok=True)
            if mode == "mounted":
                await asyncio.to_thread(_copy_mounted, meta, tmp)
            else:
                await asyncio.to_thread(tmp.mkdir)
                await _stage_resources(
                    source,
                    root_uri=root_uri,
                    resources=resources,
                    dest=tmp,
                    max_size=max_size,
                    request_timeout=request_timeout,
                )
            skill_md = tmp / SKILL_MD
            raw = await asyncio.to_thread(skill_md.read_bytes) if skill_md.is_file() else b""
            fm = parse_frontmatter(raw)
            name, description = fm.get("name"), fm.get("description")
            if not raw or not isinstance(name, str) or not name or not description:
                raise _StagingError("SKILL.md is missing or its frontmatter lacks name/description")
            full = f"mcp:{bundle}:{name}"
            try:
                parse_skill_name(full)
            except ValueError:
                raise _StagingError(
                    f"skill name {full!r} is invalid (strict kebab-case, 1-64 chars)"
                ) from None
            if full in claimed:
                raise _StagingError(f"a skill named {full!r} is already registered; keeping the first")
            final = base / name

            def install(final: Path = final, tmp: Path = tmp) -> None:
                if final.exists():
                    shutil.rmtree(final)
                tmp.rename(final)

            await asyncio.to_thread(install)
        except Exception as exc:
            logger.error("skill root %s of %s not staged: %s", root_uri, bundle, exc)
            await asyncio.to_thread(shutil.rmtree, tmp, True)
            continue
        claimed.add(full)
        staged.append(StagedSkill(name, final, root_uri, fm, meta))
    return staged
