"""Exchange trading hours: pure Python (zoneinfo), no database and no clock; the time is always passed in.

* NSE, BSE: 09:15-15:30 Asia/Kolkata, Monday to Friday; NDS-OM (Indian government bonds) 09:00-17:00.
* US venues (NYSE, NASDAQ, AMEX, ARCA, CBOE, CME, CBOT, NYMEX, COMEX, OTC): 09:30-16:00 America/New_York,
  Monday to Friday. Futures trade nearly round the clock; the regular cash session is what the desk watches.
* FX: open from Sunday 17:00 to Friday 17:00 New York time, closed over the weekend; each FX day ends
  at 17:00 New York (the usual roll), so the FX session of a date runs from 17:00 the day before.
* CRYPTO: 24x7; a crypto day is a UTC calendar day.
* Any other exchange (or none) is treated as 24x7 like crypto, so an unknown venue is never frozen.

Exchange holidays are not modelled: every weekday is a trading day.
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
FX_ROLL = dt.time(17, 0)


@dataclass(frozen=True)
class Session:
    """A venue's regular weekday session in local time."""

    zone: ZoneInfo
    opens: dt.time
    closes: dt.time


US_SESSION = Session(NEW_YORK, dt.time(9, 30), dt.time(16, 0))
INDIA_SESSION = Session(KOLKATA, dt.time(9, 15), dt.time(15, 30))
SESSIONS: dict[str, Session] = {
    "NSE": INDIA_SESSION,
    "BSE": INDIA_SESSION,
    "NDS-OM": Session(KOLKATA, dt.time(9, 0), dt.time(17, 0)),
    **dict.fromkeys(("NYSE", "NASDAQ", "AMEX", "ARCA", "CBOE", "CME", "CBOT", "NYMEX", "COMEX", "OTC"), US_SESSION),
}
FX = "FX"
CRYPTO = "CRYPTO"
# What exchange_status() reports when no list is given.
SHOWN_EXCHANGES = ("NSE", "BSE", "NYSE", "NASDAQ", "CME", FX, CRYPTO)


def _key(exchange: str) -> str:
    return (exchange or "").strip().upper()


def exchange_zone(exchange: str) -> ZoneInfo | dt.timezone:
    """Return the time zone an exchange's days are counted in (UTC for 24x7 venues)."""
    key = _key(exchange)
    if key in SESSIONS:
        return SESSIONS[key].zone
    if key == FX:
        return NEW_YORK
    return UTC


def is_24x7(exchange: str) -> bool:
    """Whether the venue never closes: crypto and every exchange not known here."""
    key = _key(exchange)
    return key not in SESSIONS and key != FX


def is_open(exchange: str, at: dt.datetime) -> bool:
    """Return whether the exchange is in its regular session at the aware time `at`."""
    key = _key(exchange)
    if key in SESSIONS:
        session = SESSIONS[key]
        local = at.astimezone(session.zone)
        return local.weekday() < 5 and session.opens <= local.time() < session.closes
    if key == FX:
        local = at.astimezone(NEW_YORK)
        weekday, time = local.weekday(), local.time()
        if weekday == 5:  # Saturday
            return False
        if weekday == 6:  # Sunday: opens at 17:00
            return time >= FX_ROLL
        if weekday == 4:  # Friday: closes at 17:00
            return time < FX_ROLL
        return True
    return True


def session_close(exchange: str, day: dt.date) -> dt.datetime | None:
    """Return when the exchange's session of `day` closes (aware, UTC), or None when it does not trade that day.

    FX days close at 17:00 New York on weekdays; 24x7 venues close their day at the next UTC midnight.
    """
    key = _key(exchange)
    if key in SESSIONS:
        if day.weekday() >= 5:
            return None
        session = SESSIONS[key]
        return dt.datetime.combine(day, session.closes, tzinfo=session.zone).astimezone(UTC)
    if key == FX:
        if day.weekday() >= 5:
            return None
        return dt.datetime.combine(day, FX_ROLL, tzinfo=NEW_YORK).astimezone(UTC)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=UTC)


def session_window(exchange: str, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Return the [start, end) UTC interval whose ticks make up the exchange's bar for `day`.

    A venue with sessions takes its whole local calendar day (ticks of the always-open demo mode outside
    the session count too); FX takes 17:00 New York the day before to 17:00 on the day; 24x7 the UTC day.
    """
    key = _key(exchange)
    if key == FX:
        end = dt.datetime.combine(day, FX_ROLL, tzinfo=NEW_YORK)
        start = dt.datetime.combine(day - dt.timedelta(days=1), FX_ROLL, tzinfo=NEW_YORK)
        return start.astimezone(UTC), end.astimezone(UTC)
    zone = exchange_zone(key)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def trading_day(exchange: str, at: dt.datetime) -> dt.date:
    """Return the date whose session (or FX day) the time `at` belongs to."""
    key = _key(exchange)
    local = at.astimezone(exchange_zone(key))
    if key == FX and local.time() >= FX_ROLL:
        return local.date() + dt.timedelta(days=1)
    return local.date()


def next_change(exchange: str, at: dt.datetime) -> dt.datetime | None:
    """Return when the exchange next opens or closes after `at` (aware, UTC); None for a 24x7 venue."""
    key = _key(exchange)
    if is_24x7(key):
        return None
    now_open = is_open(key, at)
    zone = exchange_zone(key)
    local_day = at.astimezone(zone).date()
    for offset in range(0, 9):
        day = local_day + dt.timedelta(days=offset)
        if key == FX:
            # Only two changes a week: Friday's close and Sunday's open, both at 17:00 New York.
            if (now_open and day.weekday() == 4) or (not now_open and day.weekday() == 6):
                moment = dt.datetime.combine(day, FX_ROLL, tzinfo=NEW_YORK).astimezone(UTC)
                if moment > at:
                    return moment
            continue
        if day.weekday() >= 5:
            continue
        session = SESSIONS[key]
        moment_local = session.closes if now_open else session.opens
        moment = dt.datetime.combine(day, moment_local, tzinfo=zone).astimezone(UTC)
        if moment > at:
            return moment
    return None  # pragma: no cover - every session changes within a week


def exchange_status(at: dt.datetime, exchanges: list[str] | tuple[str, ...] | None = None) -> list[dict]:
    """Return, per exchange, its local time, whether it is open and when that next changes (None: never).

    Each item: {"exchange", "local_time" (aware, in the exchange's zone), "open", "next_change" (aware UTC)}.
    """
    rows = []
    for exchange in exchanges if exchanges is not None else SHOWN_EXCHANGES:
        key = _key(exchange)
        rows.append(
            {
                "exchange": key or "(none)",
                "local_time": at.astimezone(exchange_zone(key)),
                "open": is_open(key, at),
                "next_change": next_change(key, at),
            }
        )
    return rows
