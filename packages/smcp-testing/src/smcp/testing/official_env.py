"""The official ``a2c-smcp`` 0.4.2 virtualenv used by cross-implementation tests.

``official_python()`` creates ``<cache>/official-0.4.2/`` once (under an ``fcntl`` file lock,
so concurrent pytest workers build it only once) and returns the path of its python. The official
SDK pins ``mcp<2``, so it can never share an environment with our packages; its peers
(:mod:`smcp.testing.peers`) always run as subprocesses of this python.

Environment variables:

``SMCP_TESTING_CACHE=/path``
    the cache folder (default ``~/.cache/smcp-testing``); this repository's e2e suite and bench
    point it at ``<repo>/.e2e-cache``.

``SMCP_E2E_SKIP_OFFICIAL=1``
    tests that need the official venv skip (with a clear reason) instead of building it.
``SMCP_E2E_OFFICIAL_PYTHON=/path/to/python``
    use an existing interpreter that already has ``a2c-smcp==0.4.2`` (no venv is built).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

OFFICIAL_VERSION = "0.4.2"
OFFICIAL_REQUIREMENTS: tuple[str, ...] = (
    f"a2c-smcp[cli,server]=={OFFICIAL_VERSION}",
    "uvicorn",
    "requests",
    "websocket-client",
)
SKIP_ENV = "SMCP_E2E_SKIP_OFFICIAL"
PYTHON_ENV = "SMCP_E2E_OFFICIAL_PYTHON"
CACHE_ENV = "SMCP_TESTING_CACHE"
LOCK_TIMEOUT_S = 900.0
INSTALL_TIMEOUT_S = 900.0
VENV_TIMEOUT_S = 120.0
CHECK_TIMEOUT_S = 60.0


class OfficialEnvError(RuntimeError):
    """The official virtualenv could not be created or is unusable."""


def cache_dir() -> Path:
    """Where the official virtualenv is built (``$SMCP_TESTING_CACHE``, else ``~/.cache/smcp-testing``)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "smcp-testing"


def official_venv_dir() -> Path:
    return cache_dir() / f"official-{OFFICIAL_VERSION}"


def skip_official_requested() -> bool:
    """True when ``SMCP_E2E_SKIP_OFFICIAL`` is set to a true value."""
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes")


def _requirements_digest() -> str:
    return hashlib.sha256("\n".join(OFFICIAL_REQUIREMENTS).encode()).hexdigest()[:16]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _marker(venv: Path) -> Path:
    return venv / ".smcp-e2e-complete"


def _is_complete(venv: Path) -> bool:
    marker = _marker(venv)
    return (
        marker.is_file()
        and marker.read_text(encoding="utf-8").strip() == _requirements_digest()
        and _venv_python(venv).exists()
    )


def _run(argv: list[str], timeout: float, what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OfficialEnvError(f"{what} timed out after {timeout:.0f} s: {' '.join(argv)}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise OfficialEnvError(
            f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}\n"
            f"Hint: the official venv needs PyPI access; set {SKIP_ENV}=1 to skip official tests, "
            f"or {PYTHON_ENV}=<python with a2c-smcp=={OFFICIAL_VERSION}> to reuse one."
        )


def _check_python(python: Path) -> None:
    code = f"import a2c_smcp, socketio, uvicorn, mcp; assert a2c_smcp.__version__ == {OFFICIAL_VERSION!r}"
    _run([str(python), "-c", code], CHECK_TIMEOUT_S, "checking the official interpreter")


def _build(venv: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", str(venv)], VENV_TIMEOUT_S, "creating the official venv")
    python = _venv_python(venv)
    _run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *OFFICIAL_REQUIREMENTS],
        INSTALL_TIMEOUT_S,
        "installing the official SDK",
    )
    _check_python(python)
    _marker(venv).write_text(_requirements_digest() + "\n", encoding="utf-8")


def _acquire(lock_file: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OfficialEnvError(
                    f"waited {timeout:.0f} s for another process building the official venv"
                ) from None
            time.sleep(0.5)


_cache: dict[str, Path] = {}


def official_python() -> Path:
    """Return the python of the official a2c-smcp virtualenv, building it on first use.

    Raises :class:`OfficialEnvError` when it cannot be built (for example without network). Callers
    that are tests should use the ``official_py`` fixture, which fails the test on that error and
    skips it when ``SMCP_E2E_SKIP_OFFICIAL=1``.
    """
    cached = _cache.get("python")
    if cached is not None:
        return cached
    override = os.environ.get(PYTHON_ENV)
    if override:
        python = Path(override)
        _check_python(python)
        _cache["python"] = python
        return python
    venv = official_venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f"official-{OFFICIAL_VERSION}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, LOCK_TIMEOUT_S)
        if not _is_complete(venv):
            _build(venv)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    _cache["python"] = _venv_python(venv)
    return _cache["python"]


def official_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an official peer process, with all its state confined under ``home``.

    The official Computer writes ``~/.a2c``, ``~/.config/a2c`` and XDG state; pointing HOME and the
    XDG variables at a per-test folder keeps the real home untouched and tests independent.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("A2C_", "XDG_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "A2C_SKILL_HOME": str(home / ".a2c" / "skills"),
            "A2C_SMCP_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if extra:
        env.update(extra)
    return env
