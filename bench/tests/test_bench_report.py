"""The bench summaries: same-repeat ratios, medians and the target verdicts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1]


def _script_module(name: str) -> ModuleType:
    """Load ``bench/<name>.py`` by path (the bench scripts import each other as siblings)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_script_module("common")
report = _script_module("report")
Record = report.Record
paired_ratio, summary_table, target_status, targets = (
    report.paired_ratio,
    report.summary_table,
    report.target_status,
    report.targets,
)


def rec(server: str, key: str, repeat: int, **metrics: object) -> Record:
    return {"server": server, "key": key, "repeat": repeat, "ok": True, **metrics}


RECORDS: list[Record] = [
    rec("ours", "throughput_c16", 1, server_cpu_us_per_call=300.0),
    rec("relay", "throughput_c16", 1, server_cpu_us_per_call=250.0),
    rec("official", "throughput_c16", 1, server_cpu_us_per_call=1000.0),
    rec("ours", "throughput_c16", 2, server_cpu_us_per_call=200.0),
    rec("relay", "throughput_c16", 2, server_cpu_us_per_call=200.0),
    rec("official", "throughput_c16", 2, server_cpu_us_per_call=900.0),
    rec("relay", "throughput_c16", 3, server_cpu_us_per_call=1.0),  # no partner in repeat 3
    {"server": "ours", "key": "throughput_c16", "repeat": 3, "ok": False, "error": "boom"},
]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("ours", "relay", 1.1), ("ours", "official", 0.261), ("relay", "nobody", None)],
)
def test_paired_ratio_uses_only_repeats_with_both(a: str, b: str, expected: float | None) -> None:
    assert paired_ratio(RECORDS, "throughput_c16", "server_cpu_us_per_call", a, b) == expected


def test_target_verdicts() -> None:
    status = {
        (s["figure"], s["target"]): s
        for s in target_status(RECORDS, targets(["throughput_c16"], [], "x", 16))
    }
    relay = status[("server CPU per tool_call, 16–64 in flight", "≤ 1.10 × relay")]
    official = status[("server CPU per tool_call, 16–64 in flight", "≤ 0.35 × official")]
    assert relay["met"] is True
    assert official["met"] is True
    assert status[("office fill, 500 members", "≤ 2 × relay's time")]["met"] is None


def test_summary_table_lists_failures() -> None:
    table = summary_table(RECORDS)
    assert "| throughput_c16 | server_cpu_us_per_call |" in table
    assert "FAILED (ours, repeat 3) | boom" in table


def test_the_node_relay_full_stack_is_reported_without_a_verdict() -> None:
    records = [
        rec("mcp-direct", "fullstack", 1, c1_p50_ms=1.0),
        rec("ours", "fullstack", 1, c1_p50_ms=2.0),
        rec("node-relay", "fullstack", 1, c1_p50_ms=2.5),
    ]
    status = {s["figure"]: s for s in target_status(records, targets(["fullstack"], [], "x", 16))}
    ours = status["full stack p50 at concurrency 1"]
    node = status["same through node-relay: our Agent and Computer, the reference Socket.IO server"]
    assert ours["met"] is False and "+1.00 ms" in ours["measured"]
    assert node["met"] is None and "node-relay − MCP-direct = +1.50 ms" in node["measured"]


def test_the_paired_window_is_shown_beside_the_gap_that_decides() -> None:
    pair = {"pair_stack_p50_ms": 1.9, "pair_direct_p50_ms": 1.2, "pair_gap_ms": 0.7}
    records = [
        rec("mcp-direct", "fullstack", 1, c1_p50_ms=1.0),
        rec("ours", "fullstack", 1, c1_p50_ms=2.0, **pair),
    ]
    goal = "full stack p50 at concurrency 1"
    status = {s["figure"]: s for s in target_status(records, targets(["fullstack"], [], "x", 16))}
    assert status[goal]["met"] is False  # MCP-direct on its own is the target's floor
    assert status[goal]["measured"].startswith("ours − MCP-direct = +1.00 ms (2.00 vs 1.00 ms)")
    assert "; paired: ours − MCP-direct = +0.70 ms (1.90 vs 1.20 ms" in status[goal]["measured"]
    alone = {s["figure"]: s for s in target_status(records[1:], targets(["fullstack"], [], "x", 16))}
    assert alone[goal]["met"] is True  # without an MCP-direct run, the paired window decides


def test_tcp_chain_measures_four_hops() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, str(BENCH / "tcp_chain.py"), "--calls", "50", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "four raw TCP hops, round trip p50" in done.stdout and "(50 calls)" in done.stdout


def test_the_drivers_loop_is_asyncios_unless_uvloop_is_asked_for() -> None:
    fullstack = _script_module("fullstack")
    assert fullstack.loop_factory("asyncio") is None
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed in this environment")
    loop = fullstack.loop_factory("uvloop")()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
