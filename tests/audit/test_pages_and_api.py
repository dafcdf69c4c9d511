"""The audit page, its CSV export and GET /api/v1/audit/logs: Admins only, filtered, and bad filters named."""

import csv
import io

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from apps.accounts.models import Role
from apps.audit.models import AuditAction, AuditEvent
from apps.audit.services import audit_record, audit_verify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# who, page/export status, API status
WHO = [
    pytest.param("anonymous", 302, 401, id="anonymous"),
    pytest.param("no-role", 403, 403, id="no-role"),
    pytest.param(Role.VIEWER, 403, 403, id="viewer"),
    pytest.param(Role.ANALYST, 403, 403, id="analyst"),
    pytest.param(Role.ADMIN, 200, 200, id="admin"),
]


def sign_in(client, who: str):
    if who == "anonymous":
        return None
    user = UserFactory(username=f"{who.lower()}-user", role=None if who == "no-role" else who)
    client.force_login(user)
    return user


@pytest.fixture
def trail():
    alice = UserFactory(username="alice", role=Role.ANALYST)
    audit_record(
        action=AuditAction.TRADE_BOOKED,
        actor=alice,
        object_type="portfolios.trade",
        object_id="7",
        object_repr="BUY 10 RELIANCE",
        after={"quantity": "10"},
    )
    audit_record(
        action=AuditAction.ALERT_ACKNOWLEDGED,
        actor=alice,
        object_type="alerts.alert",
        object_id="3",
        object_repr='=HYPERLINK("http://evil")',
    )
    audit_record(action=AuditAction.LOGIN_FAILED, detail={"username": "bob"})
    return alice


@pytest.mark.parametrize(("who", "page_status", "api_status"), WHO)
def test_only_admins_read_the_trail(client, api_client, who, page_status, api_status, trail):
    user = sign_in(client, who)
    assert client.get(reverse("audit:log")).status_code == page_status
    assert client.get(reverse("audit:export")).status_code == page_status
    if user is not None:
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    assert api_client.get(reverse("api-audit-logs")).status_code == api_status


def test_the_page_filters_by_actor_action_and_text(client, trail):
    sign_in(client, Role.ADMIN)
    page = client.get(reverse("audit:log"), {"actor": "ALICE", "action": AuditAction.TRADE_BOOKED}).content.decode()
    assert "BUY 10 RELIANCE" in page and "HYPERLINK" not in page
    fragment = client.get(reverse("audit:log"), {"q": "hyperlink"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="audit-table"') and "HYPERLINK" in fragment
    assert "BUY 10 RELIANCE" not in fragment


def test_a_batch_event_shows_its_trade_ids_and_its_trades_folded_away(client):
    from apps.portfolios.models import TradeSource
    from apps.portfolios.services import trades_book_batch
    from tests.factories import InstrumentFactory, PortfolioFactory

    PortfolioFactory(code="ALPHA", base_currency="INR")
    InstrumentFactory(symbol="RELIANCE", currency="INR")
    items = [
        {
            "portfolio": "ALPHA",
            "symbol": "RELIANCE",
            "side": "BUY",
            "quantity": "1",
            "price": "2900.5",
            "traded_at": f"2026-11-20T09:15:{n:02d}+05:30",
            "external_id": f"OMS-{n}",
        }
        for n in range(30)
    ]
    booked = trades_book_batch(items=items, source=TradeSource.API, booked_by=UserFactory(role=Role.ANALYST))
    ids = sorted(item.trade_id for item in booked.items)
    sign_in(client, Role.ADMIN)
    page = client.get(reverse("audit:log"), {"action": AuditAction.TRADE_BOOKED}).content.decode()
    assert f"trade_ids:</span> {ids[0]}–{ids[-1]} (30 ids)" in page
    assert "<summary>trades (30 listed)</summary>" in page and '<th scope="col">external_id</th>' in page
    assert "<td>OMS-29</td>" in page and "{&#x27;" not in page  # no Python dict printed


def test_a_bad_filter_is_named_and_exports_nothing(client, api_client, trail):
    admin = sign_in(client, Role.ADMIN)
    page = client.get(reverse("audit:log"), {"since": "yesterday"}).content.decode()
    assert "audit-filter-errors" in page and "since" in page
    response = client.get(reverse("audit:export"), {"action": "no-such-action"})
    assert response.status_code == 400 and "action" in response.content.decode()
    api_client.force_authenticate(admin)
    response = api_client.get(reverse("api-audit-logs"), {"until": "soon"})
    assert response.status_code == 400
    assert response.json() == {"until": ["Enter a valid date/time."]}


def test_the_api_takes_times_in_any_offset_and_refuses_one_before_year_one_in_utc(api_client, trail):
    """+19:04 is beyond what PostgreSQL stores (+-15:59): the filter converts to UTC (a 500 there before)."""
    api_client.force_authenticate(UserFactory(username="root", role=Role.ADMIN))
    everything = api_client.get(reverse("api-audit-logs")).json()["count"]
    response = api_client.get(reverse("api-audit-logs"), {"since": "2020-01-01T00:00:00+19:04"})
    assert response.status_code == 200 and response.json()["count"] == everything > 0
    response = api_client.get(reverse("api-audit-logs"), {"until": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400 and set(response.json()) == {"until"}


def test_the_export_is_csv_recorded_first_and_safe_for_spreadsheets(client, trail):
    sign_in(client, Role.ADMIN)
    response = client.get(reverse("audit:export"), {"actor": "alice"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="riskradar-audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == [AuditAction.ALERT_ACKNOWLEDGED, AuditAction.TRADE_BOOKED]
    assert rows[0]["object_repr"].startswith("'=")  # not run as a formula
    export = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert export.actor_name == "admin-user" and export.detail["rows"] == 2
    assert export.detail["filters"] == {"actor": ["alice"]}
    assert audit_verify().ok


def test_the_api_lists_newest_first_with_hashes(api_client, trail):
    api_client.force_authenticate(UserFactory(username="root", role=Role.ADMIN))
    body = api_client.get(
        reverse("api-audit-logs"), {"action": [AuditAction.TRADE_BOOKED, AuditAction.LOGIN_FAILED]}
    ).json()
    assert [e["action"] for e in body["results"]] == [AuditAction.LOGIN_FAILED, AuditAction.TRADE_BOOKED]
    newest = body["results"][0]
    assert newest["actor"] == "" and newest["detail"] == {"username": "bob"}
    assert len(newest["hash"]) == 64 and newest["prev_hash"] != newest["hash"]
