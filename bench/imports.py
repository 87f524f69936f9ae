"""Import time of our packages and of the official agent.

Two figures per module, each the median of ``runs`` fresh interpreters:

* ``wall_ms``: wall clock of ``python -c "import M"`` minus that of ``python -c pass``;
* ``importtime_ms``: the cumulative figure ``python -X importtime`` reports for ``M`` itself;
* ``cpu_ms``: CPU time (user+sys) of the import run minus that of ``python -c pass``: less
  sensitive to other load on the machine than the wall clock.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from pathlib import Path

from common import Result

OURS = ("smcp.agent", "smcp.server.core", "smcp.computer", "smcp.core")
OFFICIAL = ("a2c_smcp.agent", "a2c_smcp.server")


def _wall(python: str, code: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys) of one ``python -c code``."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, capture_output=True, timeout=60)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _importtime_ms(python: str, module: str) -> float | None:
    done = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        return None
    for line in reversed(done.stderr.splitlines()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return round(int(parts[1]) / 1000.0, 1)
    return None


def measure(python: str, module: str, runs: int) -> Result:
    check = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        return {"ok": False, "error": f"import {module} failed: {check.stderr.strip()[-200:]}"}
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        base_wall, base_cpu = _wall(python, "pass")
        wall, cpu = _wall(python, f"import {module}")
        walls.append(wall - base_wall)
        cpus.append(cpu - base_cpu)
    cumul = [v for v in (_importtime_ms(python, module) for _ in range(runs)) if v is not None]
    return {
        "ok": True,
        "wall_ms": round(statistics.median(walls) * 1000.0, 1),
        "wall_min_ms": round(min(walls) * 1000.0, 1),
        "cpu_ms": round(statistics.median(cpus) * 1000.0, 1),
        "importtime_ms": statistics.median(cumul) if cumul else None,
    }


def measure_all(ours_python: str, official_python: Path | None, runs: int) -> dict[str, Result]:
    """``{module: result}`` for our modules and, when the venv is given, the official ones."""
    out = {m: measure(ours_python, m, runs) for m in OURS}
    if official_python is not None:
        out.update({m: measure(str(official_python), m, runs) for m in OFFICIAL})
    return out
