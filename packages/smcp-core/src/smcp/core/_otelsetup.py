"""OTLP span export for the three commands, when standard ``OTEL_*`` environment variables ask.

Called only by the commands (never by the libraries): with ``OTEL_TRACES_EXPORTER`` (``otlp`` or
``console``) or an ``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT`` set, it installs the OpenTelemetry SDK's
tracer provider with a batch exporter; the SDK reads the other ``OTEL_*`` variables itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["configure_from_env"]

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_from_env(service_name: str) -> Callable[[], None] | None:
    """Install a tracer provider if the environment asks for one; returns its shutdown (flush).

    Raises ``RuntimeError`` naming the missing packages when the SDK or exporter is not installed.
    """
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    wanted = exporter_name not in ("", "none") or any(os.environ.get(name) for name in _ENDPOINTS)
    if not wanted or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporter: SpanExporter
        if exporter_name == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
    except ImportError as exc:
        missing = exc.name or "the OpenTelemetry SDK"
        raise RuntimeError(
            f"OTEL_* variables ask for trace export but {missing} is not installed; "
            "install the command's [otlp] extra (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http)"
        ) from None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider.shutdown
