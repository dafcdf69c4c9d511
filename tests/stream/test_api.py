"""GET /api/v1/stream/events: recovering the events a client missed."""

import pytest

from apps.accounts.models import Role
from apps.stream.api import ERR_NO_ROLE
from apps.stream.publish import current_seq, publish
from tests.conftest import ROLES
from tests.factories import UserFactory

URL = "/api/v1/stream/events"


@pytest.fixture
def published(db, django_capture_on_commit_callbacks):
    """Publish five events and return their seqs."""
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):
            publish("alert", {"n": n})
    latest = current_seq()
    return list(range(latest - 4, latest + 1))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_gets_the_events_after_a_seq_in_order(api_as, published, role):
    response = api_as(role).get(URL, {"after": published[1]})
    assert response.status_code == 200
    body = response.json()
    assert body["events"] == [
        {"type": "alert", "seq": seq, "data": {"n": n + 2}} for n, seq in enumerate(published[2:])
    ]
    assert body["latest_seq"] == published[-1]
    assert body["oldest_seq"] == published[0]


def test_limit_pages_through_the_events(api_as, published):
    client = api_as(Role.VIEWER)
    first = client.get(URL, {"after": published[0] - 1, "limit": 2}).json()["events"]
    rest = client.get(URL, {"after": first[-1]["seq"], "limit": 10}).json()["events"]
    assert [e["seq"] for e in first + rest] == published


def test_anonymous_clients_get_401(api_client, published):
    assert api_client.get(URL).status_code == 401


def test_a_user_without_a_role_gets_403(api_client, published):
    api_client.force_authenticate(UserFactory())
    response = api_client.get(URL)
    assert response.status_code == 403
    assert response.json() == {"detail": ERR_NO_ROLE}


@pytest.mark.parametrize("query", [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "1001"}])
def test_bad_parameters_get_a_400_naming_the_field(api_as, query):
    response = api_as(Role.VIEWER).get(URL, query)
    assert response.status_code == 400
    assert set(response.json()) == set(query)
