"""One version for every distribution under packages/, exact pins between them, PEP 420 namespaces."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import tomllib
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _bump_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bump_version", ROOT / "scripts" / "bump_version.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUMP = _bump_module()
DISTS: dict[str, pathlib.Path] = BUMP.distributions()
# which of our distributions each one may depend on (a new package must be added here)
ALLOWED_INTERNAL = {
    "smcp-core": set(),
    "smcp-agent": {"smcp-core"},
    "smcp-computer": {"smcp-core"},
    "smcp-server-core": {"smcp-core"},
    "smcp-server-asgi": {"smcp-server-core"},
    "smcp-testing": {"smcp-server-core", "smcp-server-asgi", "smcp-computer", "smcp-agent"},
}


def version_of(dist: str) -> str:
    text = BUMP.version_file(DISTS[dist]).read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match, dist
    return match.group(1)


def test_every_distribution_is_known() -> None:
    assert set(DISTS) == set(ALLOWED_INTERNAL)


def test_one_version_for_all() -> None:
    assert len({version_of(d) for d in DISTS}) == 1


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_internal_dependencies_are_exact_pins_of_the_shared_version(dist: str) -> None:
    project = tomllib.loads((DISTS[dist] / "pyproject.toml").read_text())["project"]
    assert project["name"] == dist
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    internal = {}
    for req in requirements:
        match = re.match(r"(smcp-[a-z-]+)(\[[a-z,-]+\])?(.*)", req)
        if match:
            internal.setdefault(match.group(1), set()).add(match.group(3))
    assert set(internal) <= ALLOWED_INTERNAL[dist] | {dist}
    assert ALLOWED_INTERNAL[dist] <= set(internal)
    for specs in internal.values():
        assert specs == {f"=={version_of(dist)}"}


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_namespaces_stay_pep420(dist: str) -> None:
    src = DISTS[dist] / "src"
    assert not (src / "smcp" / "__init__.py").exists()
    assert not (src / "smcp" / "server" / "__init__.py").exists()
    assert (BUMP.version_file(DISTS[dist]).parent / "py.typed").exists()


def test_bump_script_rewrites_every_version_and_pin(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    for package in DISTS.values():
        dest = tmp_path / "packages" / package.name
        version_file = BUMP.version_file(package)
        target = dest / version_file.relative_to(package)
        target.parent.mkdir(parents=True)
        shutil.copy(package / "pyproject.toml", dest / "pyproject.toml")
        shutil.copy(version_file, target)
    monkeypatch.setattr(BUMP, "ROOT", tmp_path)
    assert set(BUMP.distributions()) == set(DISTS)
    BUMP.bump("9.8.7")
    for dist, package in DISTS.items():
        dest = tmp_path / "packages" / package.name
        assert '__version__ = "9.8.7"' in BUMP.version_file(dest).read_text()
        text = (dest / "pyproject.toml").read_text()
        assert "==0.1.0" not in text
        if ALLOWED_INTERNAL[dist]:
            assert "==9.8.7" in text
    with pytest.raises(SystemExit, match="not a release version"):
        BUMP.bump("latest")
