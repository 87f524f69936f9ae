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
