"""Fixtures for smcp-server-core tests; the helpers live in smcp_server_testkit.py."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from smcp_server_testkit import Harness, running


@pytest.fixture
async def smcp() -> AsyncIterator[Harness]:
    async with running() as h:
        yield h
