"""Blob handle encoding (private to this Computer, docs/protocol.md §13.1).

A handle is ``base64url_nopad(json)`` of a small flat object ``{"v": 1, "k": <kind>, ...}`` whose
other values are short strings. Decoding is strict: any deviation is ``invalid_handle``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from smcp.core.errors import BlobNotAccessibleError

__all__ = ["HANDLE_VERSION", "MAX_HANDLE_LENGTH", "decode_handle", "encode_handle", "invalid_handle"]

HANDLE_VERSION = 1
MAX_HANDLE_LENGTH = 4096
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_FIELD = re.compile(r"^[a-z]{1,8}$")


def invalid_handle(why: str) -> BlobNotAccessibleError:
    return BlobNotAccessibleError(
        f"Blob not accessible: {why}; ask the producer (tool call or get_skill) for a new handle",
        details={"reason": "invalid_handle"},
    )


def encode_handle(kind: str, fields: Mapping[str, str]) -> str:
    """Build a handle of ``kind`` carrying ``fields`` (keys: 1-8 lowercase letters, values: str)."""
    if not _KIND.match(kind):
        raise ValueError(f"invalid blob handle kind {kind!r}")
    body: dict[str, object] = {"v": HANDLE_VERSION, "k": kind}
    for key, value in fields.items():
        if not _FIELD.match(key) or key in body or not isinstance(value, str):
            raise ValueError(f"invalid blob handle field {key!r}")
        body[key] = value
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    handle = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if len(handle) > MAX_HANDLE_LENGTH:
        raise ValueError("blob handle too long")
    return handle


def decode_handle(handle: object) -> tuple[str, dict[str, str]]:
    """``(kind, fields)`` of a handle; raises 4018 ``invalid_handle`` on anything unexpected."""
    if not isinstance(handle, str) or not handle:
        raise invalid_handle("the handle is empty or not a string")
    if len(handle) > MAX_HANDLE_LENGTH or not _B64URL.match(handle) or len(handle) % 4 == 1:
        raise invalid_handle("the handle is not one this Computer minted")
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
        body = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise invalid_handle("the handle is not one this Computer minted") from None
    if not isinstance(body, dict) or type(body.get("v")) is not int:
        raise invalid_handle("the handle is not one this Computer minted")
    if body["v"] != HANDLE_VERSION:
        raise invalid_handle(f"unsupported handle version {body['v']}")
    kind = body.get("k")
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise invalid_handle("the handle has no valid kind")
    fields: dict[str, str] = {}
    for key, value in body.items():
        if key in ("v", "k"):
            continue
        if not _FIELD.match(key) or not isinstance(value, str):
            raise invalid_handle("the handle carries an unexpected field")
        fields[key] = value
    return kind, fields
