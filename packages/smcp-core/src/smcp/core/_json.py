"""The JSON codec of Socket.IO packets (every role), and an optional orjson-backed one."""

from __future__ import annotations

import json as _stdlib
from typing import Any, Protocol

__all__ = ["JsonCodec", "fast_json"]


class JsonCodec(Protocol):
    """What a packet class needs (``SMCPServer(json=...)``): the stdlib ``json`` module's ``dumps``/``loads``.

    python-socketio calls ``dumps(obj, separators=(",", ":"))`` and ``loads(text)``; the stdlib
    ``json`` module itself is a ``JsonCodec``.
    """

    def dumps(self, obj: Any, **kwargs: Any) -> str: ...

    def loads(self, s: str | bytes, **kwargs: Any) -> Any: ...


# orjson reads integers beyond 64 bits as floats (silently losing digits); let the stdlib parse
# any text with a run of 19 or more ASCII digits. The check maps every digit byte to "0" and
# everything else to "." and looks for "0" * 19: about 10x cheaper than a regex search.
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))
_LONG_RUN = b"0" * 19


class _OrjsonShim:
    """``dumps``/``loads`` with the stdlib signatures python-socketio calls, backed by orjson.

    Falls back to the stdlib for what orjson refuses or reads lossily (integers beyond 64 bits).
    """

    def __init__(self) -> None:
        import orjson

        self._dumps = orjson.dumps
        self._loads = orjson.loads
        self._error = orjson.JSONDecodeError

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return self._dumps(obj).decode()
        except TypeError:
            return _stdlib.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        raw = s if isinstance(s, bytes) else s.encode("utf-8", "surrogatepass")
        if _LONG_RUN in raw.translate(_DIGIT_MAP):
            return _stdlib.loads(s, **kwargs)
        try:
            return self._loads(raw)
        except self._error:
            return _stdlib.loads(s, **kwargs)


def fast_json() -> JsonCodec:
    """The default codec of every role's packets: the orjson shim when orjson is installed,
    else the stdlib ``json`` module."""
    try:
        return _OrjsonShim()
    except ImportError:
        return _stdlib
