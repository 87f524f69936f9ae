"""get_resources_page (docs/protocol.md §8.6, §11) against the real toolbox MCP server and fixed resources."""

from __future__ import annotations

from typing import Any

import mcp_types
import pytest
from smcp_b_sources import TOOLBOX, MemorySource, mcp_source

from smcp.computer._resources import get_resources_page, list_all_resources, resource_to_wire
from smcp.core import models
from smcp.core.errors import CapabilityNotSupportedError, MCPServerNotFoundError

pytestmark = pytest.mark.anyio


async def test_unknown_server_is_4014() -> None:
    with pytest.raises(MCPServerNotFoundError) as err:
        await get_resources_page(None, "ghost", None, "r1")
    assert err.value.to_payload() == {
        "code": 4014,
        "message": "MCP Server not registered",
        "mcp_server": "ghost",
    }


async def test_no_capability_is_4015() -> None:
    source = MemorySource("b1", [], {}, supports=False)
    with pytest.raises(CapabilityNotSupportedError) as err:
        await get_resources_page(source, "b1", None, "r1")
    assert err.value.to_payload() == {
        "code": 4015,
        "message": "MCP Server does not support 'resources' capability",
        "mcp_server": "b1",
        "capability": "resources",
    }


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (mcp_types.Resource(uri="mem://a", name="a"), {"uri": "mem://a", "name": "a"}),
        (
            mcp_types.Resource(
                uri="file:///x",
                name="x",
                title="Title is dropped",
                description="d",
                mime_type="text/plain",
                size=12,
                icons=[mcp_types.Icon(src="https://example.invalid/i.png")],
                annotations=mcp_types.Annotations(
                    audience=["user", "assistant"], priority=0.4, last_modified="2025-01-01T00:00:00Z"
                ),
                meta={"fullscreen": True, "nested": {"k": [1, None]}},
            ),
            {
                "uri": "file:///x",
                "name": "x",
                "description": "d",
                "mime_type": "text/plain",
                "size": 12,
                "annotations": {
                    "audience": ["user", "assistant"],
                    "priority": 0.4,
                    "last_modified": "2025-01-01T00:00:00Z",
                },
                "_meta": {"fullscreen": True, "nested": {"k": [1, None]}},
            },
        ),
        (
            mcp_types.Resource(uri="mem://p", name="p", annotations=mcp_types.Annotations(priority=1.0)),
            {"uri": "mem://p", "name": "p", "annotations": {"priority": 1.0}},
        ),
    ],
)
async def test_mapping(resource: mcp_types.Resource, expected: dict[str, Any]) -> None:
    assert resource_to_wire(resource) == expected
    page = await get_resources_page(MemorySource("b", [resource], {}), "b", None, "rid")
    assert page == {"resources": [expected], "req_id": "rid"}
    models.GetResourcesRet.model_validate(page)


async def test_toolbox_single_page() -> None:
    async with mcp_source(TOOLBOX, "stdio", "--mem-count", "3") as source:
        page = await get_resources_page(source, "toolbox", None, "r1")
    assert "next_cursor" not in page and page["req_id"] == "r1"
    by_uri = {r["uri"]: r for r in page["resources"]}
    assert set(by_uri) == {"window://toolbox/main", "window://toolbox/side"} | {
        f"mem://toolbox/item/{i}" for i in range(3)
    }
    assert by_uri["window://toolbox/main"]["annotations"] == {"audience": ["assistant"], "priority": 0.9}
    assert by_uri["window://toolbox/main"]["description"] == "main toolbox window"
    assert by_uri["mem://toolbox/item/0"]["name"] == "item-0"


async def test_toolbox_pagination_driven_by_cursor() -> None:
    async with mcp_source(TOOLBOX, "stdio", "--mem-count", "5", "--page-size", "3") as source:
        pages, cursor = [], None
        for _ in range(10):
            page = await get_resources_page(source, "toolbox", cursor, "r")
            pages.append(page)
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        everything = await list_all_resources(source)
    assert [len(p["resources"]) for p in pages] == [3, 3, 1]
    assert [p.get("next_cursor") for p in pages] == ["3", "6", None]
    assert "next_cursor" not in pages[-1]
    assert [r["uri"] for p in pages for r in p["resources"]] == [str(r.uri) for r in everything]


async def test_empty_cursor_means_first_page() -> None:
    source = MemorySource(
        "b", [mcp_types.Resource(uri=f"m://{i}", name=str(i)) for i in range(4)], {}, page_size=2
    )
    page = await get_resources_page(source, "b", "", "r")
    assert [r["uri"] for r in page["resources"]] == ["m://0", "m://1"] and page["next_cursor"] == "2"


async def test_list_all_stops_on_repeating_cursor() -> None:
    class Looping(MemorySource):
        async def list_resources(self, cursor: str | None) -> tuple[list[mcp_types.Resource], str | None]:
            return [mcp_types.Resource(uri="m://x", name="x")], "again"

    out = await list_all_resources(Looping("b", [], {}))
    assert len(out) == 2
