"""Summaries of a run: medians (min-max) per server, same-repeat ratios, the target table.

A record is one measured run: ``{"server", "key", "repeat", "ok", <metrics>...}``. Ratios are
the median over repeats of (A / B) where A and B were measured in the same repeat, so both saw
the same machine noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from common import Result

Record = dict[str, object]

METRICS: dict[str, list[str]] = {
    "latency": ["p50_ms", "p90_ms", "p99_ms", "calls_per_s", "server_cpu_us_per_call"],
    "throughput": ["calls_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_call", "server_cpu_util"],
    "connscale": [
        "time_to_all_joined_s",
        "server_cpu_ms_per_connection",
        "server_rss_kb_per_connection",
        "server_rss_after_mb",
        "join_p99_ms",
    ],
    "idle": [
        "bring_up_s",
        "still_connected",
        "disconnects",
        "pings_during_hold",
        "server_rss_mb",
        "server_rss_kb_per_connection",
        "server_cpu_util_idle",
    ],
    "delivery": ["notify_median_ms", "notify_max_ms", "burst_median_ms", "burst_max_ms"],
    "officefill": ["time_to_all_joined_s", "office_fill_s", "announcements", "server_cpu_ms_per_member"],
    "broadcast": [
        "all_received_p50_ms",
        "all_received_p90_ms",
        "first_received_p50_ms",
        "server_cpu_us_per_delivery",
    ],
    "fullstack": [
        "c1_p50_ms",
        "c1_p99_ms",
        "c1_calls_per_s",
        "c16_calls_per_s",
        "c16_p50_ms",
        "c1_server_cpu_us_per_call",
        "c16_server_cpu_us_per_call",
        "pair_stack_p50_ms",
        "pair_direct_p50_ms",
        "pair_gap_ms",
    ],
    "import": ["wall_ms", "importtime_ms", "cpu_ms"],
}

# (numerator, denominator) pairs shown as ratio columns when both servers ran
RATIOS = [
    ("ours", "relay"),
    ("ours", "official"),
    ("ours", "node-relay"),
    ("ours-std", "relay-std"),
    ("ours-std", "node-relay"),
    ("ours-granian", "node-relay"),
    ("ours-plain", "node-relay"),
    ("ours-plain", "relay-plain"),
    ("ours", "mcp-direct"),
    ("ours-std", "mcp-direct"),
]
SERVER_ORDER = (
    "ours",
    "official",
    "relay",
    "node-relay",
    "ours-std",
    "relay-std",
    "ours-granian",
    "ours-plain",
    "relay-plain",
    "mcp-direct",
)


def family(key: str) -> str:
    return key.split("_", 1)[0]


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def values(records: list[Record], key: str, server: str, metric: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for r in records:
        if r.get("key") == key and r.get("server") == server and r.get("ok"):
            v = _num(r.get(metric))
            if v is not None:
                out[int(r["repeat"])] = v  # type: ignore[call-overload]
    return out


def paired_ratio(records: list[Record], key: str, metric: str, a: str, b: str) -> float | None:
    va, vb = values(records, key, a, metric), values(records, key, b, metric)
    ratios = [va[k] / vb[k] for k in va if vb.get(k)]
    return round(statistics.median(ratios), 3) if ratios else None


def median_of(records: list[Record], key: str, server: str, metric: str) -> float | None:
    v = list(values(records, key, server, metric).values())
    return statistics.median(v) if v else None


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"


def ordered(items: list[str], preferred: tuple[str, ...]) -> list[str]:
    return [p for p in preferred if p in items] + [i for i in items if i not in preferred]


def summary_table(records: list[Record]) -> str:
    keys: list[str] = []
    servers: list[str] = []
    for r in records:
        if str(r["key"]) not in keys:
            keys.append(str(r["key"]))
        if str(r["server"]) not in servers:
            servers.append(str(r["server"]))
    servers = ordered(servers, SERVER_ORDER)
    ratios = [(a, b) for a, b in RATIOS if a in servers and b in servers]
    head = ["scenario", "metric", *(f"{s}" for s in servers), *(f"{a}/{b}" for a, b in ratios)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in keys:
        for metric in METRICS.get(family(key), []):
            cells = []
            seen = False
            for s in servers:
                v = values(records, key, s, metric)
                if v:
                    seen = True
                    med = statistics.median(v.values())
                    spread = f" ({fmt(min(v.values()))}–{fmt(max(v.values()))})" if len(v) > 1 else ""
                    cells.append(fmt(med) + spread)
                else:
                    cells.append("-")
            if not seen:
                continue
            rcells = [fmt(paired_ratio(records, key, metric, a, b)) for a, b in ratios]
            lines.append("| " + " | ".join([key, metric, *cells, *rcells]) + " |")
    for r in records:
        if not r.get("ok"):
            lines.append(
                f"| {r['key']} | FAILED ({r['server']}, repeat {r['repeat']}) | {str(r.get('error'))[:160]} |"
            )
    return "\n".join(lines) + "\n"


@dataclass
class Target:
    figure: str
    target: str
    measure: Callable[[list[Record]], tuple[str, bool | None]]


def _ratio_target(
    keys: list[str], metric: str, pair: tuple[str, str], limit: float, *, above: bool = False
) -> Callable[[list[Record]], tuple[str, bool | None]]:
    a, b = pair

    def measure(records: list[Record]) -> tuple[str, bool | None]:
        parts, oks = [], []
        for key in keys:
            r = paired_ratio(records, key, metric, a, b)
            if r is None:
                continue
            va, vb = fmt(median_of(records, key, a, metric)), fmt(median_of(records, key, b, metric))
            parts.append(f"{key}: {r:.2f}× ({va} vs {vb})")
            oks.append(r >= limit if above else r <= limit)
        return ("; ".join(parts) or "not measured"), (all(oks) if oks else None)

    return measure


def _abs_target(
    keys: list[str], metric: str, server: str, limit: float, above: bool = False
) -> Callable[[list[Record]], tuple[str, bool | None]]:
    def measure(records: list[Record]) -> tuple[str, bool | None]:
        parts, oks = [], []
        for key in keys:
            v = median_of(records, key, server, metric)
            if v is None:
                continue
            parts.append(f"{key}: {fmt(v)}")
            oks.append(v >= limit if above else v <= limit)
        return ("; ".join(parts) or "not measured"), (all(oks) if oks else None)

    return measure


def _fullstack_p50(records: list[Record], who: str = "ours") -> tuple[str, bool | None]:
    """The p50 gap over MCP-direct run on its own (the target's definition), and the paired
    window's gap (``pair_gap_ms``) beside it; the paired one decides only when nothing else ran."""
    ours = values(records, "fullstack", who, "c1_p50_ms")
    floor = values(records, "fullstack", "mcp-direct", "c1_p50_ms")
    diffs = [ours[k] - floor[k] for k in ours if k in floor]
    pairs = values(records, "fullstack", who, "pair_gap_ms")
    text, gap = "", None
    if pairs:
        gap = statistics.median(pairs.values())
        stack = statistics.median(values(records, "fullstack", who, "pair_stack_p50_ms").values())
        direct = statistics.median(values(records, "fullstack", who, "pair_direct_p50_ms").values())
        text = (
            f"paired: {who} − MCP-direct = {gap:+.2f} ms ({fmt(stack)} vs {fmt(direct)} ms, calls alternated)"
        )
    if diffs:
        gap = statistics.median(diffs)
        mo, mf = fmt(statistics.median(ours.values())), fmt(statistics.median(floor.values()))
        separate = f"{who} − MCP-direct = {gap:+.2f} ms ({mo} vs {mf} ms)"
        text = f"{separate}; {text}" if text else separate
    if gap is None:
        return "not measured", None
    return text, gap <= FULLSTACK_P50_MARGIN_MS


FULLSTACK_P50_MARGIN_MS = 0.8


def _idle(records: list[Record]) -> tuple[str, bool | None]:
    rows = [r for r in records if family(str(r["key"])) == "idle" and r["server"] == "ours"]
    if not rows:
        return "not measured", None
    r = rows[-1]
    rss = _num(r.get("server_rss_mb"))
    hold = _num(r.get("hold_s")) or 0.0
    pinged = hold < 30 or r.get("clients_without_ping") == 0  # pings come every 25 s by default
    held = bool(r.get("held_ok")) and not r.get("disconnects") and pinged
    text = (
        f"{r.get('still_connected')}/{r.get('connections')} held {r.get('hold_s')} s, "
        f"{r.get('disconnects')} disconnects, {r.get('pings_during_hold')} pings "
        f"({r.get('clients_without_ping')} clients without one), RSS {fmt(rss)} MB"
    )
    return text, held and rss is not None and rss <= 600


def targets(thru: list[str], conn: list[str], fill: str, fs_conc: int) -> list[Target]:
    c = f"c{fs_conc}_calls_per_s"
    return [
        Target(
            "server CPU per tool_call, 16–64 in flight",
            "≤ 1.10 × relay",
            _ratio_target(thru, "server_cpu_us_per_call", ("ours", "relay"), 1.10),
        ),
        Target(
            "server CPU per tool_call, 16–64 in flight",
            "≤ 0.35 × official",
            _ratio_target(thru, "server_cpu_us_per_call", ("ours", "official"), 0.35),
        ),
        Target(
            "server CPU per tool_call, 16–64 in flight",
            "≤ 3.0 × node-relay (default install)",
            _ratio_target(thru, "server_cpu_us_per_call", ("ours", "node-relay"), 3.0),
        ),
        Target(
            "same on smcp-server-asgi[standard] (ours-std)",
            "≤ 2.0 × node-relay",
            _ratio_target(thru, "server_cpu_us_per_call", ("ours-std", "node-relay"), 2.0),
        ),
        Target(
            "same hosted by Granian (ours-granian)",
            "≤ 2.0 × node-relay (no target of its own: compared with ours-std)",
            _ratio_target(thru, "server_cpu_us_per_call", ("ours-granian", "node-relay"), 2.0),
        ),
        Target(
            "same on uvicorn[standard] (ours-std), µs",
            "≤ 230 µs",
            _abs_target(thru, "server_cpu_us_per_call", "ours-std", 230),
        ),
        Target(
            "tool_call p50 at concurrency 1",
            "≤ 1.05 × relay",
            _ratio_target(["latency_c1"], "p50_ms", ("ours", "relay"), 1.05),
        ),
        Target(
            "tool_call p99 at concurrency 1",
            "≤ 1.05 × relay",
            _ratio_target(["latency_c1"], "p99_ms", ("ours", "relay"), 1.05),
        ),
        Target(
            "server CPU per connect+join",
            "≤ 1.1 × relay",
            _ratio_target(conn, "server_cpu_ms_per_connection", ("ours", "relay"), 1.1),
        ),
        Target(
            "server RSS per connection, KB",
            "≤ 55 KB",
            _abs_target(conn, "server_rss_kb_per_connection", "ours", 55),
        ),
        Target("10,000 idle connections on one node", "held 60 s, every ping answered, RSS ≤ 600 MB", _idle),
        Target(
            "office fill, 500 members",
            "≤ 2 × relay's time",
            _ratio_target([fill], "office_fill_s", ("ours", "relay"), 2.0),
        ),
        Target(
            "full stack p50 at concurrency 1",
            f"≤ MCP-direct p50 + {FULLSTACK_P50_MARGIN_MS} ms",
            _fullstack_p50,
        ),
        Target(
            f"full stack throughput at {fs_conc} in flight",
            "≥ 0.85 × MCP-direct",
            _ratio_target(["fullstack"], c, ("ours", "mcp-direct"), 0.85, above=True),
        ),
        Target(
            "same with the server on smcp-server-asgi[standard] (ours-std)",
            f"≤ MCP-direct p50 + {FULLSTACK_P50_MARGIN_MS} ms",
            lambda records: _fullstack_p50(records, "ours-std"),
        ),
        Target(
            "same through node-relay: our Agent and Computer, the reference Socket.IO server",
            "no target: the p50 gap that remains with the reference server in the middle",
            lambda records: (_fullstack_p50(records, "node-relay")[0], None),
        ),
        Target(
            f"same, throughput at {fs_conc} in flight (ours-std)",
            "≥ 0.85 × MCP-direct",
            _ratio_target(["fullstack"], c, ("ours-std", "mcp-direct"), 0.85, above=True),
        ),
        Target(
            f"full stack throughput at {fs_conc} in flight",
            "≥ 1.5 × official trio",
            _ratio_target(["fullstack"], c, ("ours", "official"), 1.5, above=True),
        ),
        Target(
            "import smcp.agent (wall, ms)",
            "≤ 150 ms",
            _abs_target(["import_smcp.agent"], "wall_ms", "ours", 150),
        ),
        Target(
            "import smcp.server.core (wall, ms)",
            "≤ 150 ms",
            _abs_target(["import_smcp.server.core"], "wall_ms", "ours", 150),
        ),
    ]


def target_table(records: list[Record], tlist: list[Target]) -> str:
    lines = [
        "| figure | target | measured (median; ratios within the same repeat) | met |",
        "|---|---|---|---|",
    ]
    for t in tlist:
        text, ok = t.measure(records)
        mark = "n/a" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {t.figure} | {t.target} | {text} | {mark} |")
    return "\n".join(lines) + "\n"


def target_status(records: list[Record], tlist: list[Target]) -> list[Result]:
    out: list[Result] = []
    for t in tlist:
        text, ok = t.measure(records)
        out.append({"figure": t.figure, "target": t.target, "measured": text, "met": ok})
    return out
