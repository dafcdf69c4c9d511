"""The data-source page: who sees it, who edits the feed, and the stale badge."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Role
from apps.market.models import FeedState, Tick
from tests.factories import InstrumentFactory, UserFactory

URL = "/market/data-source/"


@pytest.fixture
def watched(db):
    fresh = InstrumentFactory(symbol="AAPL", exchange="NASDAQ", currency="USD")
    old = InstrumentFactory(symbol="BTC-USD", exchange="CRYPTO", currency="USD")
    now = timezone.now()
    Tick.objects.create(instrument=fresh, ts=now - dt.timedelta(seconds=3), price=Decimal("231.5"))
    Tick.objects.create(instrument=old, ts=now - dt.timedelta(minutes=30), price=Decimal("90000"))
    return {"fresh": fresh, "old": old}


def test_the_url_name():
    assert reverse("market:data-source") == URL


@pytest.mark.parametrize(
    ("role", "expected"), [(None, 302), ("no-role", 403), (Role.VIEWER, 200), (Role.ANALYST, 200), (Role.ADMIN, 200)]
)
def test_who_may_see_the_page(client, watched, role, expected):
    if role == "no-role":
        client.force_login(UserFactory(username="norole"))
    elif role is not None:
        client.force_login(UserFactory(username=f"{role.lower()}-user", role=role))
    response = client.get(URL)
    assert response.status_code == expected
    if expected == 200:
        content = response.content.decode()
        assert 'hx-trigger="every 5s"' in content
        assert ('name="tick_interval_seconds"' in content) is (role == Role.ADMIN)


def test_a_symbol_without_a_recent_tick_is_flagged_stale(client_as, watched):
    response = client_as(Role.VIEWER).get(URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.templates[0].name == "market/_feed_status.html"
    rows = {row.instrument.symbol: row for row in response.context["status"].rows}
    assert rows["AAPL"].stale is False and rows["BTC-USD"].stale is True
    content = response.content.decode()
    assert content.count(">stale</span>") == 1 and content.count(">live</span>") == 1
    assert "NSE" in content and "CRYPTO" in content


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST])
def test_only_admin_may_change_the_feed(client_as, watched, role):
    body = {"active_feed": "demo", "tick_interval_seconds": "2", "stale_after_seconds": "30", "watched": []}
    assert client_as(role).post(URL, body).status_code == 403
    assert FeedState.get_solo().tick_interval_seconds == 1.0


def test_admin_changes_the_feed_settings(client_as, watched):
    body = {
        "active_feed": "external",
        "tick_interval_seconds": "2.5",
        "stale_after_seconds": "30",
        "watched": [watched["fresh"].pk],
    }
    response = client_as(Role.ADMIN).post(URL, body)
    assert response.status_code == 302
    state = FeedState.get_solo()
    assert (state.active_feed, state.tick_interval_seconds, state.stale_after_seconds) == ("external", 2.5, 30)
    assert state.always_open is False
    assert list(state.watched.values_list("symbol", flat=True)) == ["AAPL"]


def test_watching_too_many_is_refused(client_as, watched, settings):
    settings.FEED_MAX_WATCHED = 1
    body = {
        "active_feed": "demo",
        "tick_interval_seconds": "1",
        "stale_after_seconds": "30",
        "watched": [watched["fresh"].pk, watched["old"].pk],
    }
    response = client_as(Role.ADMIN).post(URL, body)
    assert response.status_code == 400
    assert "Watch at most 1 instruments." in response.content.decode()
    assert not FeedState.get_solo().watched.exists()
