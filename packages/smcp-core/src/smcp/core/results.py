"""``CallToolResult`` on the wire (docs/protocol.md §9.4) and the standard results every role builds.

The wire shape is the one 0.4.2 emits: keys ``meta``, ``content``, ``structuredContent``,
``isError`` in that order; content items carry ``annotations`` and ``meta`` (``null`` when
empty) and MCP's camelCase keys. MCP's own ``CallToolResult`` type (``mcp_types``) is
imported only when a result is actually converted, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_types import CallToolResult

__all__ = [
    "META_CANCELLED",
    "META_CANCEL_REASON",
    "META_TIMEOUT",
    "META_TOOL_META",
    "META_VRL",
    "SIDEBAND_HANDLE",
    "SIDEBAND_SHA256",
    "SIDEBAND_SIZE",
    "cancelled_result",
    "content_to_wire",
    "error_result",
    "exception_result",
    "from_wire",
    "is_error_result",
    "result_meta",
    "text_result",
    "timeout_result",
    "to_wire",
]

META_TIMEOUT = "a2c_timeout"
META_CANCELLED = "a2c_cancelled"
META_CANCEL_REASON = "a2c_cancel_reason"
META_TOOL_META = "a2c_tool_meta"
META_VRL = "a2c_vrl_transformed"
SIDEBAND_HANDLE = "a2c_blob_handle"
SIDEBAND_SIZE = "a2c_total_size"
SIDEBAND_SHA256 = "a2c_sha256"

#: Texts the official peers put in these results (kept identical for users who match on them).
TIMEOUT_TEXT = "工具调用超时 / Tool call timeout"
CANCELLED_TEXT = "工具调用已被取消 / Tool call cancelled"


def content_to_wire(item: Mapping[str, Any]) -> dict[str, Any]:
    """One content item in the 0.4.2 shape: MCP keys, ``annotations`` and ``meta`` always present.

    An item-level ``_meta`` from MCP moves to ``meta``, as 0.4.2's dump by field name does;
    the A2C binary sideband later writes its own ``_meta`` beside it.
    """
    out = dict(item)
    if "_meta" in out and "meta" not in out:
        out["meta"] = out.pop("_meta")
    out.setdefault("annotations", None)
    out.setdefault("meta", None)
    return out


def to_wire(result: CallToolResult | Mapping[str, Any]) -> dict[str, Any]:
    """A ``CallToolResult`` (MCP 2.x object or any dict spelling) as 0.4.2 puts it on the wire."""
    if isinstance(result, Mapping):
        data = dict(result)
    else:
        data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = data.get("meta", data.get("_meta"))
    structured = data.get("structuredContent", data.get("structured_content"))
    is_error = data.get("isError", data.get("is_error", False))
    return {
        "meta": meta,
        "content": [content_to_wire(item) for item in data.get("content") or ()],
        "structuredContent": structured,
        "isError": bool(is_error),
    }


def _merge_meta(data: Mapping[str, Any]) -> dict[str, Any] | None:
    merged: dict[str, Any] = {}
    for key in ("meta", "_meta"):
        value = data.get(key)
        if value is not None and isinstance(value, Mapping):
            merged.update(value)
    return merged or None


def result_meta(data: Mapping[str, Any]) -> dict[str, Any]:
    """Result-level metadata read from both ``meta`` and ``_meta`` (consumers must read both)."""
    return _merge_meta(data) or {}


def from_wire(data: Mapping[str, Any]) -> CallToolResult:
    """Parse a wire result into MCP's ``CallToolResult`` (``meta`` and ``_meta`` merged)."""
    from mcp_types import CallToolResult

    content = []
    for item in data.get("content") or ():
        if isinstance(item, dict) or isinstance(item, Mapping):  # noqa: SIM101 - the cheap check first
            fixed = {k: v for k, v in item.items() if k not in ("meta", "_meta")}
            meta = _merge_meta(item)
            if meta is not None:
                fixed["_meta"] = meta
            content.append(fixed)
    payload: dict[str, Any] = {
        "content": content,
        "isError": bool(data.get("isError", data.get("is_error", False))),
    }
    structured = data.get("structuredContent", data.get("structured_content"))
    if structured is not None:
        payload["structuredContent"] = structured
    meta = _merge_meta(data)
    if meta is not None:
        payload["_meta"] = meta
    return CallToolResult.model_validate(payload)


def is_error_result(data: Mapping[str, Any]) -> bool:
    return bool(data.get("isError", data.get("is_error", False)))


def text_result(
    text: str, *, is_error: bool = False, meta: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A result with one text item, in the wire shape."""
    return {
        "meta": dict(meta) if meta else None,
        "content": [{"type": "text", "text": text, "annotations": None, "meta": None}],
        "structuredContent": None,
        "isError": is_error,
    }


def error_result(text: str, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return text_result(text, is_error=True, meta=meta)


def exception_result(message: str, error_type: str) -> dict[str, Any]:
    """The result for an unknown/forbidden tool or a failure before execution (0.4.2 shape)."""
    return {
        "meta": None,
        "content": [],
        "structuredContent": {"error": message, "error_type": error_type},
        "isError": True,
    }


def timeout_result(detail: str) -> dict[str, Any]:
    """A deadline passed: ``meta.a2c_timeout`` is set."""
    return error_result(f"{TIMEOUT_TEXT}: {detail}" if detail else TIMEOUT_TEXT, {META_TIMEOUT: True})


def cancelled_result(reason: str = "agent_requested") -> dict[str, Any]:
    return error_result(CANCELLED_TEXT, {META_CANCELLED: True, META_CANCEL_REASON: reason})
