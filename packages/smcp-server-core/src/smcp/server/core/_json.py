"""An optional orjson-backed JSON module for python-socketio's ``json=`` parameter."""

from __future__ import annotations

import json as _stdlib
import re
from typing import Any

__all__ = ["fast_json"]

# orjson reads integers beyond 64 bits as floats (silently losing digits); let the stdlib parse those.
_LONG_NUMBER = re.compile(r"\d{19,}")


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

    def loads(self, text: str | bytes, **kwargs: Any) -> Any:
        if isinstance(text, bytes):
            text = text.decode()
        if _LONG_NUMBER.search(text) is not None:
            return _stdlib.loads(text, **kwargs)
        try:
            return self._loads(text)
        except self._error:
            return _stdlib.loads(text, **kwargs)


def fast_json() -> Any:
    """A JSON module for ``SMCPServer(json=...)`` (its default): the orjson shim when orjson is
    installed, else the stdlib ``json`` module."""
    try:
        return _OrjsonShim()
    except ImportError:
        return _stdlib
