"""Cron job schedules: :class:`CronSchedule`, :class:`Every`, :class:`At`, and next-run arithmetic.

Every schedule is a frozen dataclass with ``to_dict()`` (the JSON form stored in ``cron_jobs``) and
computes *slots*, the instants (Unix ms) at which it fires:

``first_slot(now_ms)``
    the first slot strictly after ``now_ms`` (used at creation and when the schedule changes);
``next_slot(slot_ms, after_ms)``
    the first slot of the same series as ``slot_ms`` strictly after ``after_ms``.

Cron expressions are evaluated on the *wall clock* of the job's IANA timezone and each wall time is
mapped to one instant, so daylight-saving changes neither skip nor double a run:

* a wall time that does not exist (the spring gap: 02:30 on the change day in Europe/Prague) fires
  once, at the first valid instant after the gap (03:00 local, the moment of the change);
* a wall time that occurs twice (the autumn overlap) fires once, at its first occurrence.

``croniter`` alone, given a timezone-aware start, fires an autumn-overlap wall time twice, so this
module iterates croniter over naive wall-clock datetimes and does the mapping itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

from .errors import InvalidScheduleError
from .fields import check_int

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
#: Unix ms limits accepted for At and computed slots (year 1970 .. 9999).
MAX_UNIX_MS = 253_402_300_799_000
#: Upper bound on wall-clock candidates examined for one answer (a repeated hour of a per-second
#: schedule is 3 600); protects against pathological expressions.
_MAX_CANDIDATES = 20_000


def _ms_to_utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _utc_to_ms(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _check_int(name: str, value: Any, minimum: int, maximum: int = MAX_UNIX_MS) -> int:
    return int(check_int(name, value, lo=minimum, hi=maximum, error=InvalidScheduleError))


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression (5 or 6 fields, names, macros) evaluated in an IANA ``timezone``."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str) or not self.expression.strip():
            raise InvalidScheduleError(f"cron expression must be a non-empty string, got "
                                       f"{self.expression!r}")
        if not isinstance(self.timezone, str) or not self.timezone:
            raise InvalidScheduleError(f"timezone must be an IANA name, got {self.timezone!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidScheduleError(f"unknown timezone {self.timezone!r}") from exc
        fields = self.expression.split()
        if not self.expression.strip().startswith("@") and len(fields) not in (5, 6):
            raise InvalidScheduleError(
                f"cron expression {self.expression!r} has {len(fields)} fields; expected 5 "
                "(minute hour day month weekday) or 6 (with seconds)")
        try:
            croniter(self.expression, datetime(2000, 1, 1))
        except (CroniterError, ValueError, KeyError, TypeError) as exc:
            raise InvalidScheduleError(f"invalid cron expression {self.expression!r}: {exc}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict:
        return {"type": "cron", "expression": self.expression, "timezone": self.timezone}

    # -- wall clock <-> instants ------------------------------------------------------------------
    def _instant(self, wall: datetime) -> int:
        """The one instant (Unix ms) at which naive local ``wall`` fires (see module docstring)."""
        tz = self.zone
        first = wall.replace(tzinfo=tz, fold=0)
        utc = first.astimezone(_UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == wall:
            return _utc_to_ms(utc)  # exists; fold=0 is the first occurrence of a repeated time
        # In the gap: fold=0 maps with the offset before the change (a later instant), fold=1
        # with the offset after it (an earlier one); the change lies between. Find it.
        lo = _utc_to_ms(wall.replace(tzinfo=tz, fold=1).astimezone(_UTC))
        hi = _utc_to_ms(utc)
        if lo > hi:
            lo, hi = hi, lo
        off_hi = _ms_to_utc(hi).astimezone(tz).utcoffset()
        while hi - lo > 1:  # invariant: offset at hi is the post-change one, at lo it is not
            mid = (lo + hi) // 2
            if _ms_to_utc(mid).astimezone(tz).utcoffset() == off_hi:
                hi = mid
            else:
                lo = mid
        return hi

    def _wall(self, ms: int) -> datetime:
        return _ms_to_utc(ms).astimezone(self.zone)

    def _after(self, after_ms: int) -> int | None:
        local = self._wall(after_ms)
        # Inside the second pass of a repeated hour (fold=1) every wall time of the repeat already
        # fired in the first pass: those candidates map to earlier instants and are skipped below.
        start = local.replace(tzinfo=None, microsecond=0)
        try:
            it = croniter(self.expression, start)
            for _ in range(_MAX_CANDIDATES):
                cand = it.get_next(datetime)
                ms = self._instant(cand)
                if ms > after_ms:
                    return ms if ms <= MAX_UNIX_MS else None
        except CroniterBadDateError:
            return None  # the expression never fires again (e.g. 30 February)
        raise InvalidScheduleError(
            f"cron expression {self.expression!r} yields no slot after {after_ms} within "
            f"{_MAX_CANDIDATES} candidates")

    # -- slots ------------------------------------------------------------------------------------
    def first_slot(self, now_ms: int) -> int | None:
        return self._after(now_ms)

    def next_slot(self, slot_ms: int, after_ms: int) -> int | None:
        return self._after(max(slot_ms, after_ms))


@dataclass(frozen=True)
class Every:
    """A run every ``interval_ms`` milliseconds; the series starts one interval after creation."""

    interval_ms: int

    def __post_init__(self) -> None:
        _check_int("Every.interval_ms", self.interval_ms, 1)

    def to_dict(self) -> dict:
        return {"type": "every", "interval_ms": self.interval_ms}

    def first_slot(self, now_ms: int) -> int | None:
        nxt = now_ms + self.interval_ms
        return nxt if nxt <= MAX_UNIX_MS else None

    def next_slot(self, slot_ms: int, after_ms: int) -> int | None:
        if after_ms < slot_ms:
            return slot_ms
        nxt = slot_ms + ((after_ms - slot_ms) // self.interval_ms + 1) * self.interval_ms
        return nxt if nxt <= MAX_UNIX_MS else None


@dataclass(frozen=True)
class At:
    """One run at ``at_unix_ms`` (which must lie in the future when the job is created)."""

    at_unix_ms: int

    def __post_init__(self) -> None:
        _check_int("At.at_unix_ms", self.at_unix_ms, 0)

    def to_dict(self) -> dict:
        return {"type": "at", "at_unix_ms": self.at_unix_ms}

    def first_slot(self, now_ms: int) -> int | None:
        return self.at_unix_ms if self.at_unix_ms > now_ms else None

    def next_slot(self, slot_ms: int, after_ms: int) -> int | None:
        return self.at_unix_ms if self.at_unix_ms > after_ms else None


Schedule = Union[CronSchedule, Every, At]
SCHEDULE_TYPES = (CronSchedule, Every, At)


def schedule_from_dict(data: Any) -> Schedule:
    """Rebuild a schedule from its ``to_dict()`` form (or JSON text of it)."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidScheduleError(f"schedule is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidScheduleError(f"schedule must be an object, got {type(data).__name__}")
    kind = data.get("type")
    try:
        if kind == "cron":
            return CronSchedule(data["expression"], timezone=data.get("timezone", "UTC"))
        if kind == "every":
            return Every(data["interval_ms"])
        if kind == "at":
            return At(data["at_unix_ms"])
    except KeyError as exc:
        raise InvalidScheduleError(f"schedule of type {kind!r} lacks field {exc.args[0]!r}") from exc
    raise InvalidScheduleError(f"schedule type must be 'cron', 'every' or 'at', got {kind!r}")


def coerce_schedule(value: Any) -> Schedule:
    """Accept a schedule object, its dict/JSON form, or a bare cron expression string."""
    if isinstance(value, SCHEDULE_TYPES):
        return value
    if isinstance(value, str) and not value.lstrip().startswith("{"):
        return CronSchedule(value)
    if isinstance(value, (dict, str, bytes)):
        return schedule_from_dict(value)
    raise InvalidScheduleError(
        f"schedule must be CronSchedule, Every, At or their dict form, got {type(value).__name__}")


def schedule_json(schedule: Schedule) -> str:
    return json.dumps(schedule.to_dict(), sort_keys=True, separators=(",", ":"))


__all__ = ["CronSchedule", "Every", "At", "Schedule", "schedule_from_dict", "coerce_schedule",
           "schedule_json", "MAX_UNIX_MS"]
