"""What the server relies on in python-socketio beyond its documented API, in one place.

``tests/test_server_socketio_internals.py`` checks each of these against the installed
python-socketio and fails when it is outside :data:`TESTED_SOCKETIO` or no longer behaves so.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TESTED_SOCKETIO", "packet_class"]

# python-socketio versions the internals below were checked against: [low, high).
TESTED_SOCKETIO = ((5, 13), (6, 0))


def packet_class(json_module: Any = None) -> type[Any]:
    """A Socket.IO packet class for ``AsyncServer(serializer=...)``.

    It encodes with ``json_module`` (when given; set on this class only, not process-wide) and
    looks for binary attachments only when the JSON codec refuses a payload, instead of
    python-socketio's recursive scan of every outgoing payload (``Packet.data_is_binary``): SMCP
    payloads are plain JSON, so the scan almost never finds anything. A payload that does hold
    ``bytes`` is still sent as a binary event or ack with attachments, as python-socketio would.

    Relies on: ``Packet.uses_binary_events`` (checked in ``Packet.__init__``), the ``packet_type``
    and ``data`` attributes, and ``Packet.encode`` building ``BINARY_EVENT``/``BINARY_ACK``
    packets from ``packet_type``.
    """
    from socketio import packet

    base = packet.Packet
    binary_types = {packet.EVENT: packet.BINARY_EVENT, packet.ACK: packet.BINARY_ACK}

    class SMCPPacket(base):  # type: ignore[misc,valid-type]
        uses_binary_events = False
        packet_type: int
        data: Any

        def encode(self) -> Any:
            try:
                return super().encode()
            except TypeError:
                binary_type = binary_types.get(self.packet_type)
                if binary_type is None or not base.data_is_binary(self.data):
                    raise
                self.packet_type = binary_type
                return super().encode()

    if json_module is not None:
        SMCPPacket.json = json_module
    return SMCPPacket
