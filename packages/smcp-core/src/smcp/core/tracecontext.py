"""W3C trace context on the SMCP wire (docs/protocol.md §5.12), without OpenTelemetry.

A request may carry an optional top-level ``_meta`` object with ``traceparent`` and ``tracestate``
(the W3C Trace Context headers). Peers that do not trace ignore it; the official 0.4.2 server drops
it, and a trace then restarts at the Computer. This module holds the key names, the parse and inject
helpers and the one rule every role uses to decide whether it traces: only when the application
already imported OpenTelemetry and installed a tracer provider (so nothing is imported, and almost
nothing is done, when tracing is off).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "META_KEY",
    "TRACEPARENT",
    "TRACESTATE",
    "TraceParent",
    "carrier",
    "current_trace_id",
    "format_traceparent",
    "parse_traceparent",
    "tracer",
    "with_carrier",
]

#: The optional top-level key of an SMCP request that carries the trace context.
META_KEY = "_meta"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_MAX_LENGTH = 512  # a traceparent is 55 characters; tracestate is at most 32 members


class TraceParent(NamedTuple):
    """A parsed ``traceparent``: hex trace id, hex parent span id and the sampled flag."""

    trace_id: str
    span_id: str
    sampled: bool


def parse_traceparent(value: object) -> TraceParent | None:
    """The fields of a valid ``traceparent`` (version 00 rules, later versions read leniently)."""
    if not isinstance(value, str) or len(value) > _MAX_LENGTH:
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceParent(trace_id, span_id, bool(int(flags, 16) & 1))


def format_traceparent(trace_id: str, span_id: str, sampled: bool = True) -> str:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def carrier(data: object) -> dict[str, str] | None:
    """The trace headers of a request (``traceparent``, ``tracestate``), or ``None`` when it has none."""
    if data.__class__ is not dict:
        return None
    meta = data.get(META_KEY)
    if meta.__class__ is not dict or parse_traceparent(meta.get(TRACEPARENT)) is None:
        return None
    headers = {TRACEPARENT: meta[TRACEPARENT]}
    state = meta.get(TRACESTATE)
    if isinstance(state, str) and len(state) <= _MAX_LENGTH:
        headers[TRACESTATE] = state
    return headers


def with_carrier(data: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` whose ``_meta`` carries ``headers`` (other ``_meta`` keys are kept)."""
    meta = data.get(META_KEY)
    merged = {**meta} if isinstance(meta, dict) else {}
    merged.pop(TRACESTATE, None)
    for key in (TRACEPARENT, TRACESTATE):
        if key in headers:
            merged[key] = headers[key]
    return {**data, META_KEY: merged}


_DEFAULT_PROVIDERS = frozenset({"ProxyTracerProvider", "NoOpTracerProvider"})
_UNKNOWN = object()
#: A provider named by this variable is loaded by the API on first use, so then ask the API.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
#: tracer name -> (the provider it came from, the tracer)
_TRACERS: dict[str, tuple[Any, Any]] = {}


def tracer(name: str, version: str) -> Any:
    """An OpenTelemetry ``Tracer`` when the application installed a tracer provider, else ``None``.

    OpenTelemetry is never imported here: if ``opentelemetry.trace`` is not loaded yet, nobody
    can have installed a provider. Checked on every call, so a provider installed later counts.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    # The API's global, read directly: get_tracer_provider() also looks at os.environ on every call
    # while none is set, which costs more than everything else here.
    provider: Any = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and not _PROVIDER_FROM_ENV:
        return None
    if provider is None or provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    cached = _TRACERS.get(name)
    if cached is not None and cached[0] is provider:
        return cached[1]
    if type(provider).__name__ in _DEFAULT_PROVIDERS:
        return None
    found = provider.get_tracer(name, version)
    _TRACERS[name] = (provider, found)
    return found


def current_trace_id() -> str | None:
    """The hex trace id of the current OpenTelemetry span (for log lines), else ``None``."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None
