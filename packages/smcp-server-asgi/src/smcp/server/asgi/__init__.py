"""smcp-server-asgi: host the A2C-SMCP server as one ASGI app, and the ``smcp-server`` command.

>>> app = create_app(settings=ServerSettings(), auth=TokenAuth("secret"))  # run with any ASGI server

Public API: :func:`create_app`, :func:`mount`, :class:`SMCPApp`, :func:`render_prometheus`,
:func:`listen_socket` and :func:`set_nodelay` (a TCP_NODELAY listening socket for any ASGI server),
:func:`tune_gc` (the garbage-collector settings of ``smcp-server``), :func:`uvicorn_ws_protocol`
(uvicorn's WebSocket protocol as ``smcp-server`` runs it);
the command lives in :mod:`smcp.server.asgi.cli`.
"""

from smcp.core._compat import require_core_version
from smcp.server.asgi._version import __version__

require_core_version("smcp-server-asgi", __version__)

from smcp.server.asgi._app import SMCPApp, create_app, mount  # noqa: E402
from smcp.server.asgi._gc import tune_gc  # noqa: E402
from smcp.server.asgi._prometheus import render_prometheus  # noqa: E402
from smcp.server.asgi._sockets import listen_socket, set_nodelay  # noqa: E402
from smcp.server.asgi._uvicorn import uvicorn_ws_protocol  # noqa: E402

__all__ = [
    "SMCPApp",
    "__version__",
    "create_app",
    "listen_socket",
    "mount",
    "render_prometheus",
    "set_nodelay",
    "tune_gc",
    "uvicorn_ws_protocol",
]
