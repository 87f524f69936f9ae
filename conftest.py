"""Shared pytest set-up for every test folder (packages/*/tests, tests/, e2e/)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
