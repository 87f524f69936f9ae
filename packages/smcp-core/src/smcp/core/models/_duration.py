"""ISO-8601 durations (``PT30S``) as the streamable server parameters carry them."""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str) -> float:
    """Seconds in an ISO-8601 duration of days/hours/minutes/seconds."""
    match = _DURATION.match(value.strip())
    if not match or value.strip() in ("P", "PT") or value.strip().endswith("T"):
        raise ValueError(f"invalid ISO-8601 duration {value!r} (expected e.g. 'PT30S')")
    d, h, m, s = (float(match.group(k) or 0) for k in "dhms")
    return d * 86400 + h * 3600 + m * 60 + s


def format_duration(seconds: float) -> str:
    """``PT30S``, ``PT5M``, ``PT1H30M``, ``PT0.5S``: the shortest exact form."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    whole = int(seconds)
    frac = seconds - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or frac or out == "PT":
        sec_value = secs + frac
        out += f"{sec_value:g}S" if frac else f"{secs}S"
    return out
