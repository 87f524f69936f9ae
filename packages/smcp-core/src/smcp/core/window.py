"""``window://`` URIs: parsing and building (docs/protocol.md §10.1)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = ["WINDOW_SCHEME", "WindowURI", "build_window_uri", "is_window_uri", "parse_window_uri"]

WINDOW_SCHEME = "window://"


@dataclass(frozen=True, slots=True)
class WindowURI:
    host: str
    segments: tuple[str, ...] = ()

    def __str__(self) -> str:
        return build_window_uri(self.host, *self.segments)


def is_window_uri(uri: str) -> bool:
    return uri.startswith(WINDOW_SCHEME)


def build_window_uri(host: str, *segments: str) -> str:
    """``window://host/seg1/seg2`` with each segment percent-encoded (``/`` becomes ``%2F``)."""
    if not host or "/" in host:
        raise ValueError(f"invalid window host {host!r}")
    return WINDOW_SCHEME + host + "".join("/" + quote(seg, safe="") for seg in segments)


def parse_window_uri(uri: str) -> WindowURI:
    """Parse a window URI. A query part is tolerated and ignored; a missing host is an error."""
    if not is_window_uri(uri):
        raise ValueError(f"not a window URI: {uri!r}")
    rest = uri[len(WINDOW_SCHEME) :]
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    host, _, path = rest.partition("/")
    if not host:
        raise ValueError(f"window URI without host: {uri!r}")
    segments = tuple(unquote(seg) for seg in path.split("/")) if path else ()
    return WindowURI(host, segments)
