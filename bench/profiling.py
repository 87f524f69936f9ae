"""Where a server's CPU goes under load: py-spy samples of the server process, summarised.

    python bench/profiling.py --server ours --concurrency 64 --seconds 8 [--py-spy PATH]
    python bench/profiling.py --server ours --scenario officefill --members 500 --seconds 20

Starts the server (servers.py), drives it with ``load.py`` (throughput or officefill), attaches
``py-spy record --format raw --nolineno`` (idle frames excluded) for ``--seconds``, then prints
and writes ``bench/results/profile-<server>-<timestamp>.json``: CPU share by package of the leaf
frame (self time), the top functions by self and by inclusive time.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Result, log
from servers import SERVER_NAMES, Servers

HERE = Path(__file__).resolve().parent
PYDANTIC = ("pydantic", "pydantic_core", "typing_inspection")


def package_of(frame: str) -> str:
    """Top-level package of a py-spy frame ``func (pkg/mod.py)``."""
    m = re.search(r"\(([^()]*)\)\s*$", frame)
    path = m.group(1) if m else ""
    if "/" in path:
        top = path.split("/")[0]
        return "pydantic" if top in PYDANTIC else top
    if path == "selectors.py":
        return "asyncio"
    return path or "?"


def analyse(raw: Path, top: int = 20) -> Result:
    self_c: collections.Counter[str] = collections.Counter()
    incl_c: collections.Counter[str] = collections.Counter()
    pkg_c: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        self_c[frames[-1]] += n
        pkg_c[package_of(frames[-1])] += n
        for f in set(frames):
            if package_of(f) != "asyncio" and not f.startswith(("<module> ", "main ", "run ")):
                incl_c[f] += n

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "self_by_package_pct": {k: pct(v) for k, v in pkg_c.most_common(15)},
        "top_self_pct": [(f, pct(n)) for f, n in self_c.most_common(top)],
        "top_inclusive_pct": [(f, pct(n)) for f, n in incl_c.most_common(top)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=SERVER_NAMES, default="ours")
    ap.add_argument("--scenario", choices=["throughput", "officefill"], default="throughput")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--members", type=int, default=500, help="office size (officefill)")
    ap.add_argument("--seconds", type=float, default=8.0, help="sampling window")
    ap.add_argument("--rate", type=int, default=200, help="samples per second")
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"))
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.gettempdir()) / "smcp-bench" / f"profile-{stamp}"
    servers = Servers(work, args.token)
    proc, url = servers.start(args.server)
    raw = work / "pyspy.raw"
    load = None
    try:
        argv = [sys.executable, str(HERE / "load.py"), "--url", url, "--token", args.token,
                "--server-pid", str(proc.pid), "--scenario", args.scenario]  # fmt: skip
        if args.scenario == "throughput":
            argv += ["--concurrency", str(args.concurrency), "--seconds", str(args.seconds + 8),
                     "--n", "10000000", "--warmup", "300"]  # fmt: skip
        else:
            argv += ["--members", str(args.members), "--seconds", "120", "--connect-concurrency", "200"]
        load = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True, cwd=HERE)  # fmt: skip
        time.sleep(3.0 if args.scenario == "throughput" else 1.0)  # connect + warm-up
        spy = subprocess.run(
            [args.py_spy, "record", "--pid", str(proc.pid), "--duration", str(int(args.seconds)),
             "--rate", str(args.rate), "--format", "raw", "--nolineno", "--output", str(raw)],
            capture_output=True, text=True, timeout=args.seconds + 60, check=False,
        )  # fmt: skip
        if spy.returncode != 0:
            log(f"py-spy failed: {spy.stderr[-500:]}")
        out, _ = load.communicate(timeout=args.seconds + 120)
        loadgen: Result = next((json.loads(x) for x in reversed(out.splitlines()) if x.startswith("{")), {})
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        servers.stop_all()
    report: Result = {"server": args.server, "concurrency": args.concurrency, "loadgen": loadgen}
    if raw.exists():
        report["py_spy"] = analyse(raw)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"profile-{args.server}-{stamp}.json"
    path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
