"""A normal reconnect logs no ERROR line (issue 17): python-engineio's ``packet queue is empty,
aborting`` after a silent drop is demoted to DEBUG in our client layer; real engineio errors pass."""

from __future__ import annotations

import logging

import pytest

from smcp.agent import AsyncAgent
from smcp.computer import Computer, ComputerLink
from smcp.core._engineio_log import EngineIOLog
from smcp.testing.server import TOKEN, running

pytestmark = pytest.mark.anyio


def test_the_benign_engineio_error_is_demoted_and_real_errors_pass(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="engineio.client")
    log = EngineIOLog()
    log.error("packet queue is empty, aborting")
    log.error("Unexpected error decoding packet: %s", "boom")
    log.info("Sending packet PING")  # engineio's chatter stays out, as with its default logger
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "engineio.client"]
    assert records == [
        (logging.DEBUG, "packet queue is empty, aborting"),
        (logging.ERROR, "Unexpected error decoding packet: boom"),
    ]


async def test_agent_and_computer_clients_use_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="engineio.client")
    async with running() as smcp:
        computer = Computer("laptop")
        link = ComputerLink(computer, smcp.url, token=TOKEN)
        agent = AsyncAgent(smcp.url, token=TOKEN, office="o1", name="a1")
        async with computer, agent:
            await link.connect()
            try:
                sio = agent._conn._sio
                assert sio is not None
                for client in (sio, link.sio):
                    assert isinstance(client.eio.logger, EngineIOLog)
                    # what engineio's writer logs when the server falls silent
                    client.eio.logger.error("packet queue is empty, aborting")
            finally:
                await link.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("packet queue is empty" in r.getMessage() for r in caplog.records) == 2
