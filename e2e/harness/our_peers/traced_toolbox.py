"""The toolbox MCP server (stdio) with OpenTelemetry export set up from the ``OTEL_*`` variables.

mcp 2.x servers make a span per request themselves once a tracer provider is installed.
"""

from __future__ import annotations

import sys

from smcp.core._otelsetup import configure_from_env
from smcp.testing.mcp_servers import toolbox

flush = configure_from_env("mcp-toolbox")
try:
    toolbox.main(sys.argv[1:])
finally:
    if flush is not None:
        flush()
