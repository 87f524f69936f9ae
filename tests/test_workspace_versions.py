"""One version for all five distributions, exact pins between them, PEP 420 namespaces."""

from __future__ import annotations

import pathlib
import re
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = {
    "smcp-core": "src/smcp/core",
    "smcp-agent": "src/smcp/agent",
    "smcp-computer": "src/smcp/computer",
    "smcp-server-core": "src/smcp/server/core",
    "smcp-server-asgi": "src/smcp/server/asgi",
}
ALLOWED_INTERNAL = {
    "smcp-core": set(),
    "smcp-agent": {"smcp-core"},
    "smcp-computer": {"smcp-core"},
    "smcp-server-core": {"smcp-core"},
    "smcp-server-asgi": {"smcp-server-core"},
}


def version_of(dist: str) -> str:
    text = (ROOT / "packages" / dist / SOURCES[dist] / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match, dist
    return match.group(1)


def test_one_version_for_all() -> None:
    assert len({version_of(d) for d in SOURCES}) == 1


@pytest.mark.parametrize("dist", sorted(SOURCES))
def test_internal_dependencies_are_exact_pins_of_the_shared_version(dist: str) -> None:
    project = tomllib.loads((ROOT / "packages" / dist / "pyproject.toml").read_text())["project"]
    assert project["name"] == dist
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    internal = {}
    for req in requirements:
        match = re.match(r"(smcp-[a-z-]+)(\[[a-z,]+\])?(.*)", req)
        if match:
            internal[match.group(1)] = match.group(3)
    assert set(internal) <= ALLOWED_INTERNAL[dist] | {dist}
    assert ALLOWED_INTERNAL[dist] <= set(internal)
    for spec in internal.values():
        assert spec == f"=={version_of(dist)}"


@pytest.mark.parametrize("dist", sorted(SOURCES))
def test_namespaces_stay_pep420(dist: str) -> None:
    src = ROOT / "packages" / dist / "src"
    assert not (src / "smcp" / "__init__.py").exists()
    assert not (src / "smcp" / "server" / "__init__.py").exists()
    assert (src / SOURCES[dist].removeprefix("src/") / "py.typed").exists()


def test_bump_script_rewrites_every_version_and_pin(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import shutil

    for dist, src in SOURCES.items():
        dest = tmp_path / "packages" / dist
        (dest / src).mkdir(parents=True)
        shutil.copy(ROOT / "packages" / dist / "pyproject.toml", dest / "pyproject.toml")
        shutil.copy(ROOT / "packages" / dist / src / "_version.py", dest / src / "_version.py")
    spec = importlib.util.spec_from_file_location("bump_version", ROOT / "scripts" / "bump_version.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    module.bump("9.8.7")
    for dist, src in SOURCES.items():
        assert '__version__ = "9.8.7"' in (tmp_path / "packages" / dist / src / "_version.py").read_text()
        text = (tmp_path / "packages" / dist / "pyproject.toml").read_text()
        assert "==0.1.0" not in text
        if ALLOWED_INTERNAL[dist]:
            assert "==9.8.7" in text
    with pytest.raises(SystemExit, match="not a release version"):
        module.bump("latest")
