"""Set one version on every distribution under packages/ and on the exact pins between them.

    python scripts/bump_version.py 0.2.0

The version lives in each package's version file (``[tool.hatch.version] path`` of its
pyproject.toml, read by hatchling) and in the ``==`` pins between our packages; this script is the
one place that changes them together. The distributions are found, not listed: every
``packages/*/pyproject.toml``.
"""

from __future__ import annotations

import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSION = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?$")
PIN = re.compile(r"(\"smcp-[a-z-]+(?:\[[a-z,-]+\])?==)[^\"]+(\")")


def distributions(root: pathlib.Path | None = None) -> dict[str, pathlib.Path]:
    """Every distribution under ``packages/``: its name -> its package folder."""
    found = {}
    for pyproject in sorted(((root or ROOT) / "packages").glob("*/pyproject.toml")):
        found[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return found


def version_file(package: pathlib.Path) -> pathlib.Path:
    """The file that holds ``__version__`` for the package in ``package`` (its hatch version path)."""
    config = tomllib.loads((package / "pyproject.toml").read_text())
    return package / config["tool"]["hatch"]["version"]["path"]


def bump(version: str) -> list[pathlib.Path]:
    if not VERSION.match(version):
        raise SystemExit(f"not a release version: {version!r} (expected e.g. 0.2.0, 0.2.0rc1)")
    changed = []
    for package in distributions().values():
        path = version_file(package)
        path.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', path.read_text()))
        pyproject = package / "pyproject.toml"
        pyproject.write_text(PIN.sub(rf"\g<1>{version}\g<2>", pyproject.read_text()))
        changed += [path, pyproject]
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for path in bump(sys.argv[1]):
        print(path.relative_to(ROOT))
