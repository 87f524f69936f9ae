"""Fixtures for smcp-server-core tests; the helpers live in ``smcp.testing.server``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from smcp.testing.server import Harness, running


@pytest.fixture
async def smcp() -> AsyncIterator[Harness]:
    async with running() as h:
        yield h
