"""smcp-server-core: the A2C-SMCP Server on python-socketio, independent of any web framework.

>>> server = SMCPServer(ServerSettings(grace=5.0), TokenAuth("secret"))
>>> server.sio  # a socketio.AsyncServer (async_mode="asgi"); host it anywhere

Public API: :class:`SMCPServer`, :class:`ServerSettings`, :class:`TokenAuth`, :class:`AllowAll`,
:class:`AuthProvider`, :class:`Principal`, :data:`OfficeAuthorizer`, :class:`Registry`,
:class:`MemoryRegistry`, :class:`Session`, :class:`ServerMetrics`, :class:`VersionGate`,
:class:`JsonCodec`, :func:`fast_json`, :class:`FinishedCall`, :data:`CallListener`.
"""

from typing import TYPE_CHECKING, Any

from smcp.core._compat import require_core_version
from smcp.server.core._version import __version__

require_core_version("smcp-server-core", __version__)

from smcp.server.core._auth import AllowAll, AuthProvider, OfficeAuthorizer, Principal, TokenAuth  # noqa: E402
from smcp.server.core._calls import CallListener, FinishedCall  # noqa: E402
from smcp.server.core._gate import VersionGate  # noqa: E402
from smcp.server.core._json import JsonCodec, fast_json  # noqa: E402
from smcp.server.core._metrics import ServerMetrics  # noqa: E402
from smcp.server.core._registry import JoinOutcome, JoinRejected, MemoryRegistry, Registry, Session  # noqa: E402
from smcp.server.core._settings import ServerSettings  # noqa: E402

if TYPE_CHECKING:
    from smcp.server.core._cluster import RedisCluster
    from smcp.server.core._server import SMCPServer


def __getattr__(name: str) -> Any:
    # SMCPServer pulls in asyncio and the handlers; load it on first use to keep imports cheap.
    if name == "SMCPServer":
        from smcp.server.core._server import SMCPServer

        return SMCPServer
    if name == "RedisCluster":
        from smcp.server.core._cluster import RedisCluster

        return RedisCluster
    raise AttributeError(f"module 'smcp.server.core' has no attribute {name!r}")


__all__ = [
    "AllowAll",
    "AuthProvider",
    "CallListener",
    "FinishedCall",
    "JoinOutcome",
    "JoinRejected",
    "JsonCodec",
    "MemoryRegistry",
    "OfficeAuthorizer",
    "Principal",
    "RedisCluster",
    "Registry",
    "SMCPServer",
    "ServerMetrics",
    "ServerSettings",
    "Session",
    "TokenAuth",
    "VersionGate",
    "__version__",
    "fast_json",
]
