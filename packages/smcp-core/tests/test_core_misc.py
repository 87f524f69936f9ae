"""Versioning, window URIs, the version-skew check and the import budget."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smcp.core import _compat, versioning, window


@pytest.mark.parametrize(
    ("client", "server", "ok"),
    [
        ("0.4.0", "0.4.0", True),
        ("0.4.7", "0.4.0", True),
        ("0.3.9", "0.4.0", False),
        ("0.5.0", "0.4.0", False),
        ("1.0.0", "0.4.0", False),
        ("1.2.0", "1.3.0", True),
        ("1.4.0", "1.3.0", False),
        ("2.0.0", "1.3.0", False),
    ],
)
def test_compatibility_rule(client: str, server: str, ok: bool) -> None:
    assert versioning.is_compatible(client, server) is ok


@pytest.mark.parametrize(
    ("uri", "host", "segments"),
    [
        ("window://com.example.editor", "com.example.editor", ()),
        ("window://h/a/b", "h", ("a", "b")),
        ("window://h/a%2Fb/c%20d", "h", ("a/b", "c d")),
        ("window://h/x?priority=5", "h", ("x",)),
    ],
)
def test_window_uri_parse(uri: str, host: str, segments: tuple[str, ...]) -> None:
    parsed = window.parse_window_uri(uri)
    assert (parsed.host, parsed.segments) == (host, segments)


@pytest.mark.parametrize(
    ("host", "segments", "uri"),
    [("h", (), "window://h"), ("h", ("a/b", "c d"), "window://h/a%2Fb/c%20d")],
)
def test_window_uri_build_round_trip(host: str, segments: tuple[str, ...], uri: str) -> None:
    assert window.build_window_uri(host, *segments) == uri
    assert window.parse_window_uri(uri).segments == segments


@pytest.mark.parametrize("bad", ["http://x", "window://", "window:///a"])
def test_window_uri_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        window.parse_window_uri(bad)


def test_version_skew_error_says_what_to_run() -> None:
    with pytest.raises(_compat.VersionSkewError, match=r"pip install 'smcp-core==9\.9\.9'"):
        _compat.require_core_version("smcp-agent", "9.9.9")
    _compat.require_core_version("smcp-agent", _compat.CORE_VERSION)


def test_importing_core_does_not_import_pydantic() -> None:
    code = "import sys, smcp.core, smcp.core.events, smcp.core.errors; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
