"""Set one version on all five distributions and their exact pins.

    python scripts/bump_version.py 0.2.0

The version lives in each package's ``_version.py`` (read by hatchling) and in the ``==`` pins
between our packages; this script is the one place that changes them together.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {
    "smcp-core": "src/smcp/core",
    "smcp-agent": "src/smcp/agent",
    "smcp-computer": "src/smcp/computer",
    "smcp-server-core": "src/smcp/server/core",
    "smcp-server-asgi": "src/smcp/server/asgi",
}
VERSION = re.compile(r"^\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?$")
PIN = re.compile(r"(\"(?:smcp-core|smcp-server-core)(?:\[[a-z,]+\])?==)[^\"]+(\")")


def bump(version: str) -> list[pathlib.Path]:
    if not VERSION.match(version):
        raise SystemExit(f"not a release version: {version!r} (expected e.g. 0.2.0, 0.2.0rc1)")
    changed = []
    for dist, src in PACKAGES.items():
        version_file = ROOT / "packages" / dist / src / "_version.py"
        text = version_file.read_text()
        version_file.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', text))
        pyproject = ROOT / "packages" / dist / "pyproject.toml"
        pyproject.write_text(PIN.sub(rf"\g<1>{version}\g<2>", pyproject.read_text()))
        changed += [version_file, pyproject]
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for path in bump(sys.argv[1]):
        print(path.relative_to(ROOT))
