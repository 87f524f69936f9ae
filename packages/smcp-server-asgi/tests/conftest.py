"""Fixtures for smcp-server-asgi tests; reuses the server-core test kit (real uvicorn, real clients)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent / "smcp-server-core" / "tests"))
