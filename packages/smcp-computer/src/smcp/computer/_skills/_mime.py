"""Deterministic MIME types for skill files (docs/protocol.md §12.4): by lowercase extension only."""

from __future__ import annotations

from pathlib import PurePosixPath

__all__ = ["OCTET_STREAM", "guess_mime", "is_text_mime"]

OCTET_STREAM = "application/octet-stream"

_BY_EXTENSION: dict[str, str] = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".json": "application/json",
    ".xml": "application/xml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".rst": "text/x-rst",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".ico": "image/vnd.microsoft.icon",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}

_TEXT_APPLICATION = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
    }
)


def guess_mime(name: str) -> str:
    """The MIME type of a file name from its lowercase extension; unknown gives octet-stream."""
    return _BY_EXTENSION.get(PurePosixPath(name).suffix.lower(), OCTET_STREAM)


def is_text_mime(mime: str) -> bool:
    """True for ``text/*``, ``*+json``/``*+xml``/``*+yaml`` and the textual ``application/*`` types."""
    essence = mime.split(";", 1)[0].strip().lower()
    return (
        essence.startswith("text/")
        or essence.endswith(("+json", "+xml", "+yaml"))
        or essence in _TEXT_APPLICATION
    )
