"""Server settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerSettings"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Tunables of :class:`~smcp.server.core.SMCPServer`; every field has a safe default."""

    #: Seconds added to a tool call's own ``timeout`` before the relay gives up (408).
    grace: float = 5.0
    #: Relay deadline in seconds for every ``client:*`` other than ``client:tool_call``.
    default_timeout: float = 60.0
    #: Largest Engine.IO message (HTTP body or WebSocket frame) in bytes; larger ones are refused.
    max_message_size: int = 16 * MIB
    #: Hard ceiling of one Engine.IO transfer (a polling body or a WebSocket frame); beyond it the
    #: connection is dropped. Messages between ``max_message_size`` and this ceiling fail alone.
    #: ``None``: twice ``max_message_size`` (at least 1 MiB more).
    transport_limit: int | None = None
    #: Agents allowed in one office at a time (the protocol's default is one).
    max_agents_per_office: int = 1
    #: Engine.IO heartbeat, seconds: a peer that vanished without closing its socket keeps its
    #: session (and its name in its office) for at most ``ping_interval + ping_timeout``.
    #: python-socketio's defaults; the trade-off is in docs/reliability.md.
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    #: ``cors_allowed_origins`` for python-socketio: ``None`` (same origin only: a page of another
    #: site cannot connect with a user's credential), a list of origins, or ``"*"`` (any site).
    cors_allowed_origins: str | list[str] | None = None
    #: Check the ``a2c_version`` query again in the Socket.IO connect handler (for hosts without the gate).
    check_version_on_connect: bool = True
    #: Bytes that may wait to be sent to one connection (a client that stops reading); beyond it
    #: the connection is dropped, with a warning and ``slow_consumer_drops_total``. ``None``: four
    #: times ``max_message_size``.
    output_limit: int | None = None
    #: Seconds :meth:`SMCPServer.shutdown` waits for answers to in-flight requests to be sent.
    shutdown_timeout: float = 5.0
    # The limits' defaults are far above what one process serves; lower them for shared deployments.
    #: Connections the server accepts at a time.
    max_connections: int = 100_000
    #: Connections one principal may hold at a time (with a shared token every client is one principal).
    max_connections_per_principal: int = 100_000
    #: ``client:*`` requests of one principal waiting for an answer at a time.
    max_calls_in_flight_per_principal: int = 10_000
    #: ``client:*`` requests of one connection waiting for an answer at a time.
    max_pending_per_connection: int = 1_000
    #: ``client:*`` requests per second and principal (token bucket); ``None``: no rate limit.
    calls_per_second: float | None = None
    #: Bucket size of ``calls_per_second`` (requests allowed at once); ``None``: one second's worth.
    call_burst: int | None = None

    def __post_init__(self) -> None:
        if self.grace < 0:
            raise ValueError(f"grace must be >= 0 seconds, got {self.grace}")
        if self.default_timeout <= 0:
            raise ValueError(f"default_timeout must be > 0 seconds, got {self.default_timeout}")
        if self.max_message_size < 1024:
            raise ValueError(f"max_message_size must be at least 1024 bytes, got {self.max_message_size}")
        if self.transport_limit is not None and self.transport_limit < self.max_message_size:
            raise ValueError("transport_limit must be >= max_message_size")
        for limit in (
            "max_connections",
            "max_connections_per_principal",
            "max_calls_in_flight_per_principal",
            "max_pending_per_connection",
        ):
            if getattr(self, limit) < 1:
                raise ValueError(f"{limit} must be >= 1, got {getattr(self, limit)}")
        if self.calls_per_second is not None and not self.calls_per_second > 0:
            raise ValueError(f"calls_per_second must be > 0 (or None), got {self.calls_per_second}")
        if self.call_burst is not None and self.call_burst < 1:
            raise ValueError(f"call_burst must be >= 1, got {self.call_burst}")
        if self.output_limit is not None and self.output_limit < self.max_message_size:
            raise ValueError("output_limit must be >= max_message_size")
        if self.max_agents_per_office < 1:
            raise ValueError(f"max_agents_per_office must be >= 1, got {self.max_agents_per_office}")

    @property
    def effective_output_limit(self) -> int:
        """The per-connection output limit the server uses."""
        return self.output_limit if self.output_limit is not None else 4 * self.max_message_size

    @property
    def effective_transport_limit(self) -> int:
        """The Engine.IO ``max_http_buffer_size`` the server uses."""
        if self.transport_limit is not None:
            return self.transport_limit
        return max(2 * self.max_message_size, self.max_message_size + MIB)
