"""Build the artifacts (a wheel and an sdist per distribution), install each package alone from
its wheel, import it alone.

Proves "install only the role you need": an Agent-only install carries no server and no MCP
client stack, a server install carries no MCP client, the test kit alone carries no role, and so on.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import time
import zipfile
from email.parser import Parser

import pytest

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parent.parent
DISTS = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))
IMPORTS = {
    "smcp-core": "smcp.core",
    "smcp-agent": "smcp.agent",
    "smcp-computer": "smcp.computer",
    "smcp-server-core": "smcp.server.core",
    "smcp-server-asgi": "smcp.server.asgi",
    "smcp-testing": "smcp.testing",
}
#: Distributions that must NOT come with a role's install.
FORBIDDEN = {
    "smcp-core": {"python-socketio", "mcp", "starlette", "uvicorn", "smcp-agent", "smcp-computer"},
    "smcp-agent": {"mcp", "starlette", "uvicorn", "smcp-server-core", "smcp-computer"},
    "smcp-computer": {"smcp-server-core", "smcp-agent"},
    "smcp-server-core": {"mcp", "starlette", "uvicorn", "smcp-agent", "smcp-computer", "aiohttp"},
    "smcp-server-asgi": {"mcp", "smcp-agent", "smcp-computer"},
    "smcp-testing": {"smcp-core", "python-socketio", "mcp", "uvicorn", "smcp-agent", "smcp-computer"},
}


def run(*argv: str, timeout: float = 300) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("dist")
    for dist in DISTS:
        run(
            sys.executable,
            "-m",
            "uv",
            "build",
            "--quiet",
            "--out-dir",
            str(out),
            str(ROOT / "packages" / dist),
        )
    return out


def test_a_wheel_and_an_sdist_per_distribution(artifacts: pathlib.Path) -> None:
    assert set(DISTS) == set(IMPORTS)
    names = sorted(p.name for p in artifacts.iterdir() if p.suffix in (".whl", ".gz"))
    assert len(names) == 2 * len(DISTS), names
    assert sum(n.endswith(".whl") for n in names) == len(DISTS)


#: the repository address in every wheel's Project-URLs (and the package READMEs' absolute links)
REPOSITORY = "https://github.com/smcp-python/smcp-python"
PROJECT_URLS = ("Homepage", "Documentation", "Source", "Changelog")


@pytest.mark.parametrize("dist", DISTS)
def test_wheel_carries_the_license_and_project_urls(dist: str, artifacts: pathlib.Path) -> None:
    (wheel,) = artifacts.glob(f"{dist.replace('-', '_')}-*.whl")
    license_text = (ROOT / "LICENSE").read_text()
    assert (ROOT / "packages" / dist / "LICENSE").read_text() == license_text, "copy differs from the root's"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (licensed,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(licensed).decode() == license_text
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(archive.read(meta_name).decode())
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [])
    assert set(PROJECT_URLS) <= set(urls), urls
    assert all(url.startswith(REPOSITORY) for url in urls.values()), urls
    # the README is the PyPI description: a relative link there leads nowhere
    relative = re.findall(r"\]\((?!https?://|#)([^)]+)\)", meta.get_payload())
    assert not relative, f"{dist}'s README has relative links: {relative}"


@pytest.mark.parametrize("dist", DISTS)
def test_role_installs_and_imports_alone(dist: str, artifacts: pathlib.Path, tmp_path: pathlib.Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "uv", "venv", "--quiet", "--python", sys.executable, str(venv))
    python = str(venv / "bin" / "python")
    text = (ROOT / "packages/smcp-core/src/smcp/core/_version.py").read_text()
    version = re.search(r'__version__ = "([^"]+)"', text).group(1)  # type: ignore[union-attr]
    run(
        sys.executable,
        "-m",
        "uv",
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        "--find-links",
        str(artifacts),
        f"{dist}=={version}",
    )
    listed = json.loads(
        run(sys.executable, "-m", "uv", "pip", "list", "--python", python, "--format", "json")
    )
    installed = {item["name"].lower() for item in listed}
    assert dist in installed
    assert not (FORBIDDEN[dist] & installed), f"{dist} pulled in {FORBIDDEN[dist] & installed}"
    module = IMPORTS[dist]
    code = f"import {module} as m; assert m.__version__ == {version!r}"
    if dist != "smcp-testing":  # the test kit's base install carries no role, so no smcp-core
        code += f"; import smcp.core; assert smcp.core.__version__ == {version!r}"
    run(python, "-c", code)


def test_scripts_hatch_build_builds_every_distribution(tmp_path: pathlib.Path) -> None:
    """The documented `scripts/hatch build`: at the root every distribution, in a package folder that one."""
    hatch = ROOT / "scripts" / "hatch"
    if not (ROOT / ".venv-hatch" / "bin" / "hatch").exists():
        pytest.skip("scripts/hatch has not installed hatch yet (that needs the package index)")
    # run as a fresh shell would: not inside the hatch environment that runs this test
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATCH_")}
    env["HATCH_BUILD_LOCATION"] = str(tmp_path / "all")
    done = subprocess.run(
        [str(hatch), "build", "-t", "wheel"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    built = sorted(p.name.split("-")[0] for p in (tmp_path / "all").glob("*.whl"))
    assert built == sorted(d.replace("-", "_") for d in DISTS)
    env["HATCH_BUILD_LOCATION"] = str(tmp_path / "one")
    done = subprocess.run(
        [str(hatch), "build", "-t", "wheel"],
        cwd=ROOT / "packages" / "smcp-core" / "src",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert [p.name.split("-")[0] for p in (tmp_path / "one").iterdir()] == ["smcp_core"]


# -- the README's quick start, as written -------------------------------------------------------


def _quick_start_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick starts", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def _commands(block: str) -> list[str]:
    """The command lines of a bash block, without trailing comments."""
    stripped = (re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines())
    return [line for line in stripped if line]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(log: pathlib.Path, marker: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s:\n{log.read_text()}"
        time.sleep(0.2)


def test_readme_quick_start_runs_as_written(artifacts: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import shlex
    import signal
    import urllib.request

    blocks = _quick_start_blocks()
    assert [kind for kind, _ in blocks] == ["bash", "python", "json", "bash", "bash", "python", "bash"]
    server_sh, mcp_server_py, mcp_json, computer_sh, agent_pip, agent_py, agent_sh = (
        body for _, body in blocks
    )
    text = (ROOT / "packages/smcp-core/src/smcp/core/_version.py").read_text()
    version = re.search(r'__version__ = "([^"]+)"', text).group(1)  # type: ignore[union-attr]
    port = str(_free_port())

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "uv", "venv", "--quiet", "--python", sys.executable, str(venv))
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_mcp_server.py").write_text(mcp_server_py)
    (work / "mcp.json").write_text(mcp_json)
    (work / "my_agent.py").write_text(agent_py.replace("8000", port))

    def shell(line: str) -> list[str]:
        """A README command line: its pip installs come from the built wheels into the venv."""
        words = shlex.split(line)
        if words[:2] == ["pip", "install"]:
            wanted = [w if "==" in w else f"{w}=={version}" for w in words[2:]]
            pip = [
                sys.executable,
                "-m",
                "uv",
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin/python"),
            ]
            run(*pip, "--find-links", str(artifacts), *wanted)
            return []
        return [line.replace("8000", port)]

    def start(line: str, log: pathlib.Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                line,
                shell=True,
                cwd=work,
                env=env,
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def now(line: str) -> str:
        done = subprocess.run(
            line, shell=True, cwd=work, env=env, text=True, capture_output=True, timeout=120
        )
        assert done.returncode == 0, f"{line} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    started: list[subprocess.Popen[bytes]] = []
    server_log, computer_log = tmp_path / "server.log", tmp_path / "computer.log"
    try:
        (server_line,) = [c for line in _commands(server_sh) for c in shell(line)]
        started.append(start(server_line, server_log))
        url = f"http://127.0.0.1:{port}/readyz"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert started[0].poll() is None, server_log.read_text(errors="replace")
            time.sleep(0.2)
        else:
            raise AssertionError(f"{url} not ready within 20 s:\n{server_log.read_text(errors='replace')}")
        validate, computer_line = [c for line in _commands(computer_sh) for c in shell(line)]
        assert "validate" in validate and "run" in computer_line
        now(validate)
        started.append(start(computer_line, computer_log))
        _wait_for(computer_log, "READY 1/1", started[1], timeout=90)
        assert [c for line in _commands(agent_pip) for c in shell(line)] == []
        assert now(f"{venv / 'bin/python'} my_agent.py").strip() == "HELLO"
        (agent_line,) = [c for line in _commands(agent_sh) for c in shell(line)]
        assert "shout" in now(agent_line)
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
