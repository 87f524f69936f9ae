"""``client:get_desktop``: collect, organise and render ``window://`` resources
(docs/protocol.md §10.3, §10.4)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smcp.computer._resources import ResourceSource, list_all_resources
from smcp.core.window import is_window_uri

if TYPE_CHECKING:
    import mcp_types

__all__ = ["collect_desktop", "render_window", "window_fullscreen", "window_priority"]

logger = logging.getLogger("smcp.computer")


@dataclass(slots=True)
class _Window:
    bundle_id: str
    index: int  # position in its server's listing
    uri: str
    priority: float
    fullscreen: bool
    contents: list[mcp_types.TextResourceContents | mcp_types.BlobResourceContents]


def window_priority(resource: mcp_types.Resource) -> float:
    """``annotations.priority`` in [0, 1]; anything else counts as 0.0 (§10.2)."""
    ann = resource.annotations
    value = ann.priority if ann is not None else None
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        logger.warning("window %s: priority %r is not a number; using 0.0", resource.uri, value)
        return 0.0
    if not 0.0 <= value <= 1.0:
        logger.warning("window %s: priority %r is outside [0, 1]; using 0.0", resource.uri, value)
        return 0.0
    return float(value)


def window_fullscreen(resource: mcp_types.Resource) -> bool:
    """``_meta.fullscreen`` when it is a bool, else False (§10.2)."""
    value = (resource.meta or {}).get("fullscreen", False)
    if not isinstance(value, bool):
        logger.warning("window %s: _meta.fullscreen %r is not a bool; using false", resource.uri, value)
        return False
    return value


def render_window(
    uri: str, contents: Sequence[mcp_types.TextResourceContents | mcp_types.BlobResourceContents]
) -> str:
    """``"<uri>\\n\\n<body>"``, or just ``"<uri>"`` when no text content has anything to show (§10.4)."""
    texts: list[str] = []
    for item in contents:
        text = getattr(item, "text", None)
        if isinstance(text, str):
            if text:
                texts.append(text)
        else:
            logger.warning("window %s: blob content skipped (the desktop renders text only)", uri)
    body = "\n\n".join(texts).strip()
    return f"{uri}\n\n{body}" if body else uri


async def _windows_of(
    source: ResourceSource, window: str | None, request_timeout: float
) -> list[tuple[mcp_types.Resource, int]]:
    try:
        resources = await list_all_resources(source, request_timeout=request_timeout)
    except Exception as exc:
        logger.warning(
            "desktop: listing resources of %s failed, its windows are left out: %r", source.bundle_id, exc
        )
        return []
    found: list[tuple[mcp_types.Resource, int]] = []
    for resource in resources:
        uri = str(resource.uri)
        if not is_window_uri(uri) or (window is not None and uri != window):
            continue
        found.append((resource, len(found)))
    return found


async def collect_desktop(
    sources: Sequence[ResourceSource],
    recent_bundles: Sequence[str],
    *,
    size: int | None,
    window: str | None,
    request_timeout: float = 30.0,
    max_concurrency: int = 8,
) -> list[str]:
    """docs/protocol.md §10.3/§10.4: the rendered desktop entries.

    ``sources`` in activation order; ``recent_bundles`` = bundle ids of the last 10 tool calls,
    newest first. ``size`` is a global cap (``<= 0`` gives ``[]``); ``window`` keeps only the
    window with exactly that URI. Each MCP request is bounded by ``request_timeout`` seconds and at most
    ``max_concurrency`` windows are read at once. A server that fails to list or a window that
    fails to read is left out with a warning; the desktop call itself does not fail.
    """
    if size is not None and size <= 0:
        return []
    active = [s for s in sources if s.supports_resources]
    listed = await asyncio.gather(*(_windows_of(s, window, request_timeout) for s in active))

    limiter = asyncio.Semaphore(max(1, max_concurrency))

    async def read(source: ResourceSource, resource: mcp_types.Resource, index: int) -> _Window | None:
        uri = str(resource.uri)
        async with limiter:
            try:
                contents = await asyncio.wait_for(source.read_resource(uri), request_timeout)
            except Exception as exc:
                logger.warning(
                    "desktop: reading %s from %s failed, window left out: %r", uri, source.bundle_id, exc
                )
                return None
        if not contents:
            return None
        return _Window(
            source.bundle_id,
            index,
            uri,
            window_priority(resource),
            window_fullscreen(resource),
            list(contents),
        )

    read_all = [read(s, res, i) for s, found in zip(active, listed, strict=True) for res, i in found]
    windows = [w for w in await asyncio.gather(*read_all) if w is not None]

    by_bundle: dict[str, list[_Window]] = {}
    for w in windows:
        by_bundle.setdefault(w.bundle_id, []).append(w)
    order: list[str] = []
    for bundle in recent_bundles:
        if bundle in by_bundle and bundle not in order:
            order.append(bundle)
    order.extend(sorted(b for b in by_bundle if b not in order))

    cap = size if size is not None else math.inf
    entries: list[str] = []
    for bundle in order:
        if len(entries) >= cap:
            break
        group = sorted(by_bundle[bundle], key=lambda w: w.index)
        full = [w for w in group if w.fullscreen]
        if full:
            entries.append(render_window(full[0].uri, full[0].contents))
            continue
        for w in sorted(group, key=lambda w: -w.priority):
            if len(entries) >= cap:
                break
            entries.append(render_window(w.uri, w.contents))
    return entries
