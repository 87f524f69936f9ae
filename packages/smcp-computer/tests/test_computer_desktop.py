"""collect_desktop (docs/protocol.md §10.3, §10.4): ordering, caps, filters, rendering; real
toolbox servers too."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import mcp_types
import pytest
from smcp_b_sources import TOOLBOX, Contents, MemorySource, mcp_source

from smcp.computer._desktop import collect_desktop, render_window, window_fullscreen, window_priority

pytestmark = pytest.mark.anyio


def win(uri: str, priority: float | None = None, fullscreen: Any = None) -> mcp_types.Resource:
    ann = mcp_types.Annotations(priority=priority) if priority is not None else None
    meta = {"fullscreen": fullscreen} if fullscreen is not None else None
    return mcp_types.Resource(uri=uri, name=uri.rsplit("/", 1)[-1], annotations=ann, meta=meta)


def text(uri: str, *texts: str) -> Contents:
    return [mcp_types.TextResourceContents(uri=uri, text=t) for t in texts]


def source(
    bundle: str, *windows: mcp_types.Resource, supports: bool = True, page_size: int = 0
) -> MemorySource:
    contents = {str(w.uri): text(str(w.uri), f"body {w.uri}") for w in windows}
    return MemorySource(bundle, windows, contents, supports=supports, page_size=page_size)


def uris(entries: list[str]) -> list[str]:
    return [e.split("\n", 1)[0] for e in entries]


A = source("alpha", win("window://a/1", 0.1), win("window://a/2", 0.9), win("window://a/3", 0.5))
B = source("bravo", win("window://b/1", 0.2), win("window://b/2", 0.2), win("window://b/3", 0.7))
C = source(
    "charlie", win("window://c/1"), win("window://c/2", 0.3, fullscreen=True), win("window://c/3", 1.0, True)
)


@pytest.mark.parametrize(
    ("sources", "recent", "size", "window", "expected"),
    [
        # no recent calls: bundles in lexicographic order, priority descending, stable on ties
        ([B, A], [], None, None, ["a/2", "a/3", "a/1", "b/3", "b/1", "b/2"]),
        # recent calls first (newest first, each bundle once), the rest lexicographic
        (
            [A, B, C],
            ["bravo", "alpha", "bravo"],
            None,
            None,
            ["b/3", "b/1", "b/2", "a/2", "a/3", "a/1", "c/2"],
        ),
        # recent bundles without windows are ignored
        ([A, B], ["zulu", "bravo"], None, None, ["b/3", "b/1", "b/2", "a/2", "a/3", "a/1"]),
        # global cap
        ([A, B], ["bravo"], 4, None, ["b/3", "b/1", "b/2", "a/2"]),
        ([A, B], [], 1, None, ["a/2"]),
        ([A, B], [], 0, None, []),
        ([A, B], [], -3, None, []),
        # fullscreen: only the fullscreen window with the smallest original index, rest of server skipped
        ([C, A], ["charlie"], None, None, ["c/2", "a/2", "a/3", "a/1"]),
        ([C], [], 5, None, ["c/2"]),
        # window filter: exact match before organising, no prefix match, no match => []
        ([A, B, C], [], None, "window://b/1", ["b/1"]),
        ([A, B, C], [], None, "window://c/3", ["c/3"]),
        ([A, B], [], None, "window://b", []),
        ([A, B], [], None, "window://nope/1", []),
        ([A, B], [], 0, "window://b/1", []),
    ],
)
async def test_organise(
    sources: list[MemorySource], recent: list[str], size: int | None, window: str | None, expected: list[str]
) -> None:
    entries = await collect_desktop(sources, recent, size=size, window=window)
    assert uris(entries) == ["window://" + e for e in expected]
    assert all(e == f"{u}\n\nbody {u}" for e, u in zip(entries, uris(entries), strict=True))


async def test_non_windows_unsupported_empty_and_failing_are_left_out() -> None:
    plain = mcp_types.Resource(uri="mem://x", name="x")
    ok = win("window://m/ok", 0.5)
    empty = win("window://m/empty", 0.9)
    broken = win("window://m/broken", 0.8)
    mixed = MemorySource(
        "mixed",
        [plain, ok, empty, broken],
        {
            "mem://x": text("mem://x", "x"),
            "window://m/ok": text("window://m/ok", "hi"),
            "window://m/empty": [],
        },
    )
    hidden = source("hidden", win("window://h/1"), supports=False)
    entries = await collect_desktop([mixed, hidden], [], size=None, window=None)
    assert entries == ["window://m/ok\n\nhi"]
    assert "mem://x" not in mixed.reads and hidden.reads == []


async def test_paged_listing_is_exhausted() -> None:
    paged = source("paged", *[win(f"window://p/{i}", i / 10) for i in range(7)], page_size=2)
    entries = await collect_desktop([paged], [], size=None, window=None)
    assert uris(entries) == [f"window://p/{i}" for i in range(6, -1, -1)]


async def test_a_failing_server_does_not_fail_the_desktop() -> None:
    class Broken(MemorySource):
        async def list_resources(self, cursor: str | None) -> tuple[list[mcp_types.Resource], str | None]:
            raise RuntimeError("boom")

    entries = await collect_desktop([Broken("broken", [], {}), A], [], size=None, window=None)
    assert uris(entries) == ["window://a/2", "window://a/3", "window://a/1"]


async def test_reads_are_concurrent_but_bounded() -> None:
    state = {"now": 0, "peak": 0}

    class Slow(MemorySource):
        async def read_resource(self, uri: str) -> Contents:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.05)
            state["now"] -= 1
            return text(uri, "x")

    windows = [win(f"window://s/{i}") for i in range(12)]
    entries = await collect_desktop(
        [Slow("slow", windows, {})], [], size=None, window=None, max_concurrency=3
    )
    assert len(entries) == 12 and state["peak"] == 3


async def test_read_timeout_leaves_window_out() -> None:
    class Hanging(MemorySource):
        async def read_resource(self, uri: str) -> Contents:
            if uri.endswith("/hang"):
                await asyncio.sleep(30)
            return text(uri, "ok")

    hang = Hanging("h", [win("window://h/hang", 0.9), win("window://h/fine")], {})
    entries = await collect_desktop([hang], [], size=None, window=None, request_timeout=0.2)
    assert entries == ["window://h/fine\n\nok"]


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        ([], "window://w/1"),
        (["hello"], "window://w/1\n\nhello"),
        (["a", "", "b"], "window://w/1\n\na\n\nb"),
        (["  \n padded \n\n"], "window://w/1\n\npadded"),
        (["", "   "], "window://w/1"),
        ([b"blob-only"], "window://w/1"),
        ([b"blob", "text"], "window://w/1\n\ntext"),
    ],
)
def test_render(contents: list[str | bytes], expected: str) -> None:
    items: Contents = [
        mcp_types.TextResourceContents(uri="window://w/1", text=c)
        if isinstance(c, str)
        else mcp_types.BlobResourceContents(uri="window://w/1", blob="YmxvYg==")
        for c in contents
    ]
    assert render_window("window://w/1", items) == expected


async def test_blob_only_window_renders_as_bare_uri() -> None:
    w = win("window://b/blob", 0.5)
    blob_source = MemorySource(
        "b", [w], {"window://b/blob": [mcp_types.BlobResourceContents(uri="x", blob="AA==")]}
    )
    assert await collect_desktop([blob_source], [], size=None, window=None) == ["window://b/blob"]


@pytest.mark.parametrize(
    ("resource", "priority", "fullscreen"),
    [
        (win("window://x/1"), 0.0, False),
        (win("window://x/1", 0.7, True), 0.7, True),
        (win("window://x/1", 0.0, "yes"), 0.0, False),
        (win("window://x/1", 1.0, 1), 1.0, False),
        (
            mcp_types.Resource.model_construct(uri="window://x/1", name="x", meta=None, annotations=None),
            0.0,
            False,
        ),
    ],
)
def test_metadata(resource: mcp_types.Resource, priority: float, fullscreen: bool) -> None:
    assert window_priority(resource) == priority
    assert window_fullscreen(resource) is fullscreen


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), True, "0.5"])
def test_bad_priority_counts_as_zero(value: Any) -> None:
    ann = mcp_types.Annotations.model_construct(priority=value)
    resource = mcp_types.Resource.model_construct(uri="window://x/1", name="x", annotations=ann, meta=None)
    assert window_priority(resource) == 0.0


async def test_real_toolbox_servers() -> None:
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(
            mcp_source(TOOLBOX, "stdio", "--mem-count", "2", bundle_id="one")
        )
        two = await stack.enter_async_context(
            mcp_source(TOOLBOX, "stdio", "--mem-count", "2", "--fullscreen", bundle_id="two")
        )
        plain = await collect_desktop([one, two], [], size=None, window=None)
        recent = await collect_desktop([one, two], ["two"], size=None, window=None)
        capped = await collect_desktop([one, two], [], size=1, window=None)
        filtered = await collect_desktop([one, two], [], size=None, window="window://toolbox/side")
        opened = await one.session.call_tool("open_window", {"name": "extra"})
        assert not opened.is_error
        grown = await collect_desktop([one], [], size=None, window=None)
    main, side = "window://toolbox/main", "window://toolbox/side"
    assert plain == [
        f"{main}\n\ncontent of {main}",
        f"{side}\n\ncontent of {side}",
        f"{main}\n\ncontent of {main}",
    ]
    assert uris(recent) == [main, main, side]  # "two" is fullscreen: only its main window
    assert uris(capped) == [main]
    # the filter runs before organising, so two's fullscreen main window no longer hides its side window
    assert uris(filtered) == [side, side]
    assert uris(grown) == [main, "window://toolbox/extra", side]
