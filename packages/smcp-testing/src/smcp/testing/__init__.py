"""Test kit for SMCP for Python: fixtures, a process harness and MCP test servers.

Modules (each role's helpers need that role's extra):

- :mod:`smcp.testing.fixtures`: the pytest plugin (loaded by the ``pytest11`` entry point);
- :mod:`smcp.testing.processes`: subprocesses in their own process group, readiness lines, logs;
- :mod:`smcp.testing.server`: an in-process server and raw Socket.IO peers (``[server]``);
- :mod:`smcp.testing.roles`: ``smcp-server`` / ``smcp-computer`` as subprocesses, our Agent;
- :mod:`smcp.testing.tcpproxy`: a loopback TCP proxy that resets, silences or stalls connections;
- :mod:`smcp.testing.mcp_config`: ``mcp.json`` files; :mod:`smcp.testing.mcp_servers`: MCP servers;
- :mod:`smcp.testing.official_env`, :mod:`smcp.testing.official`, :mod:`smcp.testing.peers`: the
  official a2c-smcp 0.4.2 roles in their own virtualenv, for interoperability tests.
"""

from ._version import __version__

__all__ = ["__version__"]
