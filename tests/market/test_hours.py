"""Exchange trading hours: session boundaries, weekends, FX's Sunday-to-Friday week and DST."""

import datetime as dt

import pytest

from apps.market.feeds.hours import exchange_status, is_open, next_change, session_close, session_window, trading_day

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2024-05-06T09:14:59+05:30", False),
        ("2024-05-06T09:15:00+05:30", True),
        ("2024-05-06T15:29:59+05:30", True),
        ("2024-05-06T15:30:00+05:30", False),
        ("2024-05-04T11:00:00+05:30", False),  # Saturday
        ("2024-05-05T11:00:00+05:30", False),  # Sunday
    ],
)
def test_nse_is_open_from_0915_to_1530_kolkata_on_weekdays(moment, expected):
    assert is_open("NSE", at(moment)) is expected
    assert is_open("BSE", at(moment)) is expected


def test_us_session_follows_new_york_daylight_saving():
    # Friday 8 March 2024 is EST (UTC-5), Monday 11 March EDT (UTC-4): the open moves an hour in UTC.
    assert not is_open("NYSE", at("2024-03-08T14:29:59Z"))
    assert is_open("NYSE", at("2024-03-08T14:30:00Z"))
    assert is_open("NASDAQ", at("2024-03-11T13:30:00Z"))
    assert not is_open("NASDAQ", at("2024-03-11T13:29:59Z"))
    assert not is_open("NYSE", at("2024-03-11T20:00:00Z"))
    assert is_open("NYSE", at("2024-03-08T20:59:59Z"))


def test_session_close_is_utc_and_follows_dst():
    assert session_close("NYSE", dt.date(2024, 3, 8)) == at("2024-03-08T21:00:00Z")
    assert session_close("NYSE", dt.date(2024, 3, 11)) == at("2024-03-11T20:00:00Z")
    assert session_close("NSE", dt.date(2024, 5, 6)) == at("2024-05-06T10:00:00Z")
    assert session_close("NSE", dt.date(2024, 5, 4)) is None
    assert session_close("FX", dt.date(2024, 5, 6)) == at("2024-05-06T21:00:00Z")
    assert session_close("CRYPTO", dt.date(2024, 5, 4)) == at("2024-05-05T00:00:00Z")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2024-05-03T16:59:59-04:00", True),  # Friday before the close
        ("2024-05-03T17:00:00-04:00", False),  # Friday close
        ("2024-05-04T12:00:00-04:00", False),  # Saturday
        ("2024-05-05T16:59:59-04:00", False),  # Sunday before the open
        ("2024-05-05T17:00:00-04:00", True),  # Sunday open
        ("2024-05-07T03:00:00-04:00", True),  # midweek, any hour
    ],
)
def test_fx_trades_from_sunday_to_friday_1700_new_york(moment, expected):
    assert is_open("FX", at(moment)) is expected


def test_crypto_and_unknown_exchanges_never_close():
    saturday_night = at("2024-05-04T23:30:00Z")
    assert is_open("CRYPTO", saturday_night)
    assert is_open("MARS-EXCHANGE", saturday_night)
    assert is_open("", saturday_night)
    assert next_change("CRYPTO", saturday_night) is None


def test_next_change_is_the_close_when_open_and_the_next_open_when_closed():
    assert next_change("NSE", at("2024-05-06T10:00:00+05:30")) == at("2024-05-06T15:30:00+05:30")
    # Friday evening: the next open is Monday's.
    assert next_change("NSE", at("2024-05-03T18:00:00+05:30")) == at("2024-05-06T09:15:00+05:30")
    assert next_change("FX", at("2024-05-04T12:00:00Z")) == at("2024-05-05T17:00:00-04:00")
    assert next_change("FX", at("2024-05-07T12:00:00Z")) == at("2024-05-10T17:00:00-04:00")
    # Across the November DST change: Friday 1 Nov is EDT, Monday 4 Nov EST.
    assert next_change("NYSE", at("2024-11-01T22:00:00Z")) == at("2024-11-04T14:30:00Z")


def test_fx_day_runs_from_1700_new_york_the_day_before():
    assert trading_day("FX", at("2024-05-06T17:30:00-04:00")) == dt.date(2024, 5, 7)
    assert trading_day("FX", at("2024-05-06T16:30:00-04:00")) == dt.date(2024, 5, 6)
    start, end = session_window("FX", dt.date(2024, 5, 7))
    assert (start, end) == (at("2024-05-06T17:00:00-04:00"), at("2024-05-07T17:00:00-04:00"))
    assert session_window("NSE", dt.date(2024, 5, 6)) == (
        at("2024-05-06T00:00:00+05:30"),
        at("2024-05-07T00:00:00+05:30"),
    )


def test_exchange_status_reports_local_time_open_and_next_change():
    rows = {row["exchange"]: row for row in exchange_status(at("2024-05-06T05:00:00Z"))}
    assert rows["NSE"]["open"] is True
    assert rows["NSE"]["local_time"].utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert rows["NSE"]["next_change"] == at("2024-05-06T10:00:00Z")
    assert rows["NYSE"]["open"] is False
    assert rows["CRYPTO"]["open"] is True and rows["CRYPTO"]["next_change"] is None
    assert [row["exchange"] for row in exchange_status(at("2024-05-06T05:00:00Z"), ["nse", "XYZ"])] == ["NSE", "XYZ"]
