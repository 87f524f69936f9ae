"""The python-socketio internals cluster mode relies on (see ``_socketio_internals.py``)."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from smcp.server.core._socketio_internals import is_default_manager, is_redis_manager, start_manager

pytestmark = pytest.mark.anyio


async def test_start_manager_starts_the_pubsub_listener_before_any_client() -> None:
    manager = socketio.AsyncRedisManager("redis://127.0.0.1:1/0", channel="smcp-test-unused")
    sio = socketio.AsyncServer(client_manager=manager, async_mode="asgi")
    assert sio.manager_initialized is False
    start_manager(sio)
    assert sio.manager_initialized is True
    listener = manager.thread
    assert isinstance(listener, asyncio.Task) and not listener.done()
    start_manager(sio)  # idempotent: python-socketio's own lazy start is then skipped too
    assert manager.thread is listener
    listener.cancel()
    with pytest.raises(asyncio.CancelledError):
        await listener


def test_manager_kinds() -> None:
    redis_manager = socketio.AsyncRedisManager("redis://127.0.0.1:1/0")
    assert is_redis_manager(redis_manager) and not is_default_manager(redis_manager)
    assert is_default_manager(socketio.AsyncManager()) and not is_redis_manager(socketio.AsyncManager())

    class Own(socketio.AsyncRedisManager):  # type: ignore[misc]
        pass

    assert not is_redis_manager(Own("redis://127.0.0.1:1/0"))
