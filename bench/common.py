"""Helpers shared by every bench module: /proc probes, percentiles, logging to stderr.

Everything here is standard library only, so the scenario processes start fast and any
interpreter (ours or the official virtualenv's) can import it.
"""

from __future__ import annotations

import asyncio
import math
import os
import resource
import sys
import time
from collections.abc import Iterable
from types import TracebackType

perf = time.perf_counter
CLK_TCK = os.sysconf("SC_CLK_TCK")
Result = dict[str, object]


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries only the JSON result of a scenario process)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raise_nofile() -> None:
    """Lift the soft open-files limit to the hard one (10,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _stat_fields(pid: int | str) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        data = fh.read()
    return data[data.rfind(b")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(name)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out = [root]
    i = 0
    while i < len(out):
        out.extend(children.get(out[i], ()))
        i += 1
    return out


class Probe:
    """CPU seconds (utime+stime) and VmRSS of a process tree, read from /proc."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid or None
        self._pids = process_tree(self.pid) if self.pid else []

    def refresh(self) -> None:
        if self.pid:
            self._pids = process_tree(self.pid)

    def cpu_s(self) -> float | None:
        if not self.pid:
            return None
        ticks = 0
        for p in self._pids:
            try:
                f = _stat_fields(p)
                ticks += int(f[11]) + int(f[12])
            except (OSError, IndexError, ValueError):
                pass
        return ticks / CLK_TCK

    def rss_kb(self) -> int | None:
        if not self.pid:
            return None
        total = 0
        for p in self._pids:
            try:
                with open(f"/proc/{p}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                            break
            except OSError:
                pass
        return total

    async def wait_idle(self, max_s: float = 5.0, util: float = 0.05, step: float = 0.25) -> float:
        """Wait until the tree burns less than ``util`` of a core over ``step`` (at most ``max_s``)."""
        if not self.pid:
            await asyncio.sleep(0.3)
            return 0.3
        t0 = perf()
        prev = self.cpu_s() or 0.0
        while perf() - t0 < max_s:
            await asyncio.sleep(step)
            cur = self.cpu_s() or 0.0
            if cur - prev <= util * step:
                break
            prev = cur
        return perf() - t0


class Window:
    """Wall time, server CPU and load-generator CPU over one measured phase."""

    def __init__(self, server: Probe, client: Probe | None = None) -> None:
        self.server = server
        self.client = client
        self.wall = 0.0
        self.client_cpu = 0.0
        self.server_cpu: float | None = None

    def _client_cpu(self) -> float:
        if self.client is not None:
            return self.client.cpu_s() or 0.0
        return time.process_time()

    def __enter__(self) -> Window:
        self._t0 = perf()
        self._c0 = self._client_cpu()
        self._s0 = self.server.cpu_s()
        return self

    def __exit__(
        self, tp: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.wall = perf() - self._t0
        self.client_cpu = self._client_cpu() - self._c0
        s1 = self.server.cpu_s()
        self.server_cpu = None if s1 is None or self._s0 is None else s1 - self._s0

    def metrics(self, ops: int | None = None, prefix: str = "") -> Result:
        wall = self.wall or None
        out: Result = {
            f"{prefix}wall_s": round(self.wall, 4),
            f"{prefix}loadgen_cpu_util": round(self.client_cpu / wall, 3) if wall else None,
            f"{prefix}server_cpu_s": None if self.server_cpu is None else round(self.server_cpu, 3),
            f"{prefix}server_cpu_util": (
                None if self.server_cpu is None or not wall else round(self.server_cpu / wall, 3)
            ),
        }
        if ops:
            out[f"{prefix}server_cpu_us_per_op"] = (
                None if self.server_cpu is None else round(self.server_cpu / ops * 1e6, 1)
            )
            out[f"{prefix}loadgen_cpu_us_per_op"] = round(self.client_cpu / ops * 1e6, 1)
        return out


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, math.ceil(q / 100.0 * len(sorted_vals)) - 1)
    return sorted_vals[min(k, len(sorted_vals) - 1)]


def latency_summary(lat_s: Iterable[float], prefix: str = "") -> Result:
    """p50/p90/p99/max/mean in milliseconds of latencies given in seconds."""
    v = sorted(lat_s)

    def ms(x: float | None) -> float | None:
        return None if x is None else round(x * 1000.0, 3)

    return {
        f"{prefix}p50_ms": ms(percentile(v, 50)),
        f"{prefix}p90_ms": ms(percentile(v, 90)),
        f"{prefix}p99_ms": ms(percentile(v, 99)),
        f"{prefix}max_ms": ms(v[-1] if v else None),
        f"{prefix}mean_ms": ms(sum(v) / len(v) if v else None),
    }


def error_summary(errors: list[str]) -> Result:
    out: Result = {"errors": len(errors)}
    if errors:
        out["first_errors"] = sorted(set(errors))[:3]
    return out


def describe(exc: BaseException, limit: int = 160) -> str:
    return f"{type(exc).__name__}: {str(exc)[:limit]}"
