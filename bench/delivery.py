"""Delivery of back-to-back packets: the stall Nagle's algorithm adds when TCP_NODELAY is off.

The measurement is ``smcp.testing.delivery``; this script prints one JSON line on stdout, like
load.py::

    python bench/delivery.py --url http://127.0.0.1:PORT --token T --rounds 20

``notify_*`` and ``burst_*`` are the median and max over the rounds, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from smcp.testing.delivery import delivery_round, summary


async def measure(args: argparse.Namespace) -> dict[str, object]:
    figures = [
        await delivery_round(
            args.url,
            f"delivery-{i}",
            token=args.token,
            transports=args.transports.split(","),
            a2c_version=args.a2c_version,
        )
        for i in range(args.rounds)
    ]
    return {"ok": True, "rounds": args.rounds, **summary(figures)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="bench-secret")
    ap.add_argument("--a2c-version", default="0.4.0")
    ap.add_argument("--transports", default="websocket")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--server-pid", type=int, default=0, help="accepted for run.py; not used")
    ap.add_argument("--scenario", default="delivery", help="accepted for run.py; not used")
    args = ap.parse_args()
    try:
        result = asyncio.run(measure(args))
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
