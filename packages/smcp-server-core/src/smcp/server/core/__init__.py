"""smcp-server-core: the A2C-SMCP Server on python-socketio, independent of any web framework.

>>> server = SMCPServer(ServerSettings(grace=5.0), TokenAuth("secret"))
>>> server.sio  # a socketio.AsyncServer (async_mode="asgi"); host it anywhere

Public API: :class:`SMCPServer`, :class:`ServerSettings`, :class:`TokenAuth`, :class:`AllowAll`,
:class:`AuthProvider`, :class:`Principal`, :data:`OfficeAuthorizer`, :class:`Registry`,
:class:`MemoryRegistry`, :class:`Session`, :class:`ServerMetrics`, :class:`VersionGate`,
:class:`JsonCodec`, :func:`fast_json`, :class:`FinishedCall`, :data:`CallListener`,
:class:`AuthRefused`, :class:`JWTAuth` (extra ``[jwt]``), :func:`issue_token`, :data:`Policy`,
:class:`PolicyRefused`, :class:`QuotaExceeded`, :class:`AuditTrail`, :class:`FileSink`, :class:`LoggerSink`,
:data:`HandlerWrapper`.
"""

from typing import TYPE_CHECKING, Any

from smcp.core._compat import require_core_version
from smcp.server.core._version import __version__

require_core_version("smcp-server-core", __version__)

from smcp.server.core._auth import (  # noqa: E402
    AllowAll,
    AuthProvider,
    AuthRefused,
    OfficeAuthorizer,
    Principal,
    TokenAuth,
)
from smcp.server.core._calls import CallListener, FinishedCall  # noqa: E402
from smcp.server.core._gate import VersionGate  # noqa: E402
from smcp.server.core._json import JsonCodec, fast_json  # noqa: E402
from smcp.server.core._metrics import ServerMetrics  # noqa: E402
from smcp.server.core._policy import Policy, PolicyRefused  # noqa: E402
from smcp.server.core._quotas import QuotaExceeded  # noqa: E402
from smcp.server.core._registry import JoinOutcome, JoinRejected, MemoryRegistry, Registry, Session  # noqa: E402
from smcp.server.core._settings import ServerSettings  # noqa: E402

if TYPE_CHECKING:
    from smcp.server.core._audit import AuditTrail, FileSink, LoggerSink
    from smcp.server.core._cluster import RedisCluster
    from smcp.server.core._jwt import JWTAuth, issue_token
    from smcp.server.core._server import HandlerWrapper, SMCPServer

_LAZY = {
    "SMCPServer": "_server",
    "HandlerWrapper": "_server",
    "JWTAuth": "_jwt",
    "issue_token": "_jwt",
    "AuditTrail": "_audit",
    "FileSink": "_audit",
    "LoggerSink": "_audit",
    "RedisCluster": "_cluster",
}


def __getattr__(name: str) -> Any:
    # These pull in asyncio, threads or urllib; load them on first use to keep imports cheap.
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f"smcp.server.core.{module}"), name)
    raise AttributeError(f"module 'smcp.server.core' has no attribute {name!r}")


__all__ = [
    "AllowAll",
    "AuditTrail",
    "AuthProvider",
    "AuthRefused",
    "CallListener",
    "FileSink",
    "FinishedCall",
    "HandlerWrapper",
    "JWTAuth",
    "JoinOutcome",
    "JoinRejected",
    "JsonCodec",
    "LoggerSink",
    "MemoryRegistry",
    "OfficeAuthorizer",
    "Policy",
    "PolicyRefused",
    "Principal",
    "QuotaExceeded",
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
    "issue_token",
]
