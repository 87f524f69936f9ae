"""Naming rules: bundle ids, exposed tool names, skill names, request ids (docs/protocol.md §9.1, §12.1)."""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = [
    "TOOL_NAME_SEPARATOR",
    "InvalidBundleIdError",
    "bundle_id_from_identity",
    "exposed_tool_name",
    "input_env_var",
    "is_valid_bundle_id",
    "new_req_id",
    "normalize_bundle_name",
    "parse_skill_name",
    "resolve_bundle_id",
]

TOOL_NAME_SEPARATOR = "__"
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_NOT_BUNDLE_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_UNDERSCORES = re.compile(r"_+")
_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NOT_ENV_CHAR = re.compile(r"[^A-Za-z0-9_]")

TransportKind = Literal["stdio", "streamable", "sse"]


class InvalidBundleIdError(ValueError):
    """An explicit ``bundle_id`` breaks the rules: non-empty, ``[A-Za-z0-9_-]`` only, no ``__``."""


def new_req_id() -> str:
    """A fresh request id: a random (version 4) UUID in hex, as every official peer makes them.

    Built from the random bytes directly: ``uuid.uuid4().hex`` costs three times as much.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    return raw.hex()


def is_valid_bundle_id(value: str) -> bool:
    return bool(_BUNDLE_ID.match(value)) and TOOL_NAME_SEPARATOR not in value


def normalize_bundle_name(name: str) -> str:
    """Derive a bundle id from a display name; may return ``""``."""
    replaced = _NOT_BUNDLE_CHAR.sub("_", name)
    collapsed = _UNDERSCORES.sub("_", replaced)
    return collapsed.strip("_-")


def _s(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">I", len(raw)) + raw


def _list(values: Iterable[str]) -> bytes:
    items = list(values)
    return struct.pack(">I", len(items)) + b"".join(_s(v) for v in items)


def _map(mapping: Mapping[str, str] | None) -> bytes:
    entries = sorted((mapping or {}).items())
    return struct.pack(">I", len(entries)) + b"".join(_s(k) + _s(v) for k, v in entries)


def bundle_id_from_identity(
    kind: TransportKind,
    *,
    command: str = "",
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    url: str = "",
    headers: Mapping[str, str] | None = None,
) -> str:
    """The fallback id: ``bundle_`` + 16 hex chars of SHA-256 over the connection identity."""
    if kind == "stdio":
        tlv = _s("stdio") + _s(command) + _list(args) + _map(env)
    else:
        tlv = _s(kind) + _s(url) + _map(headers)
    return "bundle_" + hashlib.sha256(tlv).digest()[:8].hex()


def resolve_bundle_id(
    name: str,
    kind: TransportKind,
    *,
    explicit: str | None = None,
    command: str = "",
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    url: str = "",
    headers: Mapping[str, str] | None = None,
) -> str:
    """Resolve a server's bundle id from its raw (un-rendered) configuration."""
    if explicit is not None:
        if not is_valid_bundle_id(explicit):
            raise InvalidBundleIdError(
                f"invalid bundle_id {explicit!r}: use letters, digits, '_' and '-', without '__'"
            )
        return explicit
    derived = normalize_bundle_name(name)
    if derived:
        return derived
    return bundle_id_from_identity(kind, command=command, args=args, env=env, url=url, headers=headers)


def exposed_tool_name(bundle_id: str, tool: str, alias: str | None = None) -> str:
    """``{bundle_id}__{alias or tool}``: the only tool name that travels on the wire."""
    return f"{bundle_id}{TOOL_NAME_SEPARATOR}{alias or tool}"


def parse_skill_name(name: str) -> tuple[str, ...]:
    """Split a skill name into its segments; raise ``ValueError`` when the lexer rejects it.

    ``skill`` (user), ``plugin:skill`` (marketplace) or ``mcp:<bundle_id>:skill`` (MCP server).
    """
    parts = tuple(name.split(":"))

    def kebab(seg: str) -> bool:
        return 1 <= len(seg) <= 64 and bool(_KEBAB.match(seg))

    if len(parts) == 1 and kebab(parts[0]):
        return parts
    if len(parts) == 2 and kebab(parts[0]) and kebab(parts[1]):
        return parts
    if len(parts) == 3 and parts[0] == "mcp" and is_valid_bundle_id(parts[1]) and kebab(parts[2]):
        return parts
    raise ValueError(f"invalid skill name {name!r}")


def input_env_var(input_id: str) -> str:
    """Environment variable that supplies an input's value: ``A2C_SMCP_<id>`` (case kept)."""
    return "A2C_SMCP_" + _NOT_ENV_CHAR.sub("_", input_id)
