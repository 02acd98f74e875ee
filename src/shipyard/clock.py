"""One clock and one way to read times: milliseconds since the epoch, durations, ISO times."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from shipyard.errors import InvalidInput

__all__ = ["TimeLike", "now_ms", "parse_duration", "parse_time"]

TimeLike = datetime | int | str | None

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def now_ms() -> int:
    """The current time in milliseconds since the epoch, as every record stores it."""
    return int(time.time() * 1000)


def parse_duration(text: str) -> float | None:
    """Seconds in ``30s``, ``15m``, ``1h``, ``2d`` or ``1w``; ``None`` when ``text`` is not a duration."""
    match = _DURATION.fullmatch(text.strip())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def parse_time(value: TimeLike, *, now: datetime | None = None, field: str = "since") -> int | None:
    """Milliseconds since the epoch of ``value``: a datetime (naive = UTC), milliseconds, a duration
    back from now (``30s``, ``15m``, ``1h``, ``2d``, ``1w``) or an ISO 8601 time (``2024-05-01``,
    ``2024-05-01T13:00``, with or without an offset; naive = UTC). ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        seconds = parse_duration(text)
        if seconds is not None:
            return int(((now or datetime.now(UTC)) - timedelta(seconds=seconds)).timestamp() * 1000)
        try:
            return parse_time(datetime.fromisoformat(text.replace("Z", "+00:00")), field=field)
        except ValueError:
            pass
    raise InvalidInput(f"{field}: expected a duration back from now (15m, 1h, 2d) or an ISO time "
                       f"(2024-05-01T13:00Z), got {value!r}", field=field)
