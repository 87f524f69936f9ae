"""The JSON codec of the server's Socket.IO packets (defined in core, shared with the clients)."""

from __future__ import annotations

from smcp.core._json import JsonCodec, fast_json

__all__ = ["JsonCodec", "fast_json"]
