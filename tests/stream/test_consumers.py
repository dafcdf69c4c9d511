"""The live stream socket: authentication, events with seq, subscriptions, bad messages, heartbeats,
coalescing, html partials and closing a user's sockets when their access changes."""

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.accounts.models import Role
from apps.accounts.services import user_set_role
from apps.stream import consumers
from apps.stream.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from apps.stream.publish import current_seq, publish, publish_many
from riskradar.asgi import application
from tests.factories import UserFactory
from tests.stream.communicator import Communicator
from tests.stream.conftest import open_socket, publish_committed

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://testserver")


async def make_user(role=Role.VIEWER, **kwargs):
    return await database_sync_to_async(UserFactory)(role=role, **kwargs)


async def assert_closed_with(communicator: Communicator, code: int) -> None:
    assert await communicator.receive_output() == {"type": "websocket.close", "code": code}


async def open_app_socket(path: str = "/ws/risk-stream", headers: list | None = None) -> Communicator:
    """Connect through the whole ASGI application: origin check, session and token middleware, routing."""
    communicator = Communicator(application, path, headers=[ORIGIN, *(headers or [])])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def ticks_received(communicator: Communicator) -> list[dict]:
    events = []
    while not await communicator.receive_nothing(timeout=0.5):
        events.append(await communicator.receive_json_from())
    return events


# ---------------------------------------------------------------------------- authentication
async def test_anonymous_socket_is_closed_with_a_clear_code():
    communicator = await open_socket(AnonymousUser())
    await assert_closed_with(communicator, CLOSE_UNAUTHENTICATED)
    await communicator.disconnect()


async def test_anonymous_socket_through_the_application_is_closed_with_4401():
    communicator = await open_app_socket()
    await assert_closed_with(communicator, CLOSE_UNAUTHENTICATED)
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused():
    communicator = Communicator(application, "/ws/risk-stream", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_an_api_client_without_an_origin_header_signs_in_with_its_token():
    """Only browsers send Origin; a feed or script without one is let through to the token check."""
    user = await make_user()
    key = await database_sync_to_async(lambda: Token.objects.create(user=user).key)()
    communicator = Communicator(application, "/ws/risk-stream", headers=[(b"authorization", f"Bearer {key}".encode())])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"action": "subscribe", "portfolios": ["ALPHA"]})
    reply = await communicator.receive_json_from()
    assert reply["type"] == "subscribed"
    await communicator.disconnect()


async def test_without_an_origin_header_an_anonymous_socket_is_still_closed_with_4401():
    communicator = Communicator(application, "/ws/risk-stream")
    connected, _ = await communicator.connect()
    assert connected
    await assert_closed_with(communicator, CLOSE_UNAUTHENTICATED)
    await communicator.disconnect()


async def test_session_user_is_accepted_and_receives_events():
    user = await make_user()

    def session_cookie() -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    cookie = await database_sync_to_async(session_cookie)()
    communicator = await open_app_socket(headers=[(b"cookie", f"sessionid={cookie}".encode())])
    await publish_committed(("alert", {"message": "VaR breach"}))
    event = await communicator.receive_json_from()
    assert event["type"] == "alert"
    assert event["data"] == {"message": "VaR breach"}
    await communicator.disconnect()


@pytest.mark.parametrize("where", ["query", "header"])
async def test_api_token_is_accepted_from_the_query_or_the_bearer_header(where):
    user = await make_user()
    token = await database_sync_to_async(Token.objects.create)(user=user)
    if where == "query":
        communicator = await open_app_socket(f"/ws/risk-stream?token={token.key}")
    else:
        communicator = await open_app_socket(headers=[(b"authorization", f"Bearer {token.key}".encode())])
    await publish_committed(("alert", {"message": "hello"}))
    assert (await communicator.receive_json_from())["type"] == "alert"
    await communicator.disconnect()


async def test_a_wrong_token_is_rejected_with_4401():
    await make_user()
    communicator = await open_app_socket("/ws/risk-stream?token=not-a-token")
    await assert_closed_with(communicator, CLOSE_UNAUTHENTICATED)
    await communicator.disconnect()


async def test_the_token_of_a_disabled_user_is_rejected():
    user = await make_user(is_active=False)
    token = await database_sync_to_async(Token.objects.create)(user=user)
    communicator = await open_app_socket(headers=[(b"authorization", f"Bearer {token.key}".encode())])
    await assert_closed_with(communicator, CLOSE_UNAUTHENTICATED)
    await communicator.disconnect()


async def test_a_user_without_a_role_is_closed_with_4403():
    user = await make_user(role=None)
    communicator = await open_socket(user)
    await assert_closed_with(communicator, CLOSE_FORBIDDEN)
    await communicator.disconnect()


# ---------------------------------------------------------------------------- events and subscriptions
async def test_events_carry_an_increasing_sequence_number():
    communicator = await open_socket(await make_user())
    await publish_committed(("alert", {"n": 1}), ("alert", {"n": 2}))
    first = await communicator.receive_json_from()
    second = await communicator.receive_json_from()
    assert first == {"type": "alert", "seq": first["seq"], "data": {"n": 1}}
    assert second["seq"] == first["seq"] + 1
    assert await database_sync_to_async(current_seq)() == second["seq"]
    await communicator.disconnect()


async def test_nothing_is_sent_for_a_rolled_back_transaction():
    communicator = await open_socket(await make_user())

    def roll_back() -> None:
        from django.db import transaction

        with pytest.raises(RuntimeError), transaction.atomic():
            publish("alert", {"n": 1})
            raise RuntimeError

    await database_sync_to_async(roll_back)()
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_subscribing_filters_ticks_by_symbol_and_risk_updates_and_alerts_by_portfolio():
    communicator = await open_socket(await make_user())
    await communicator.send_json_to({"action": "subscribe", "symbols": ["RELIANCE"], "portfolios": ["ALPHA"]})
    assert await communicator.receive_json_from() == {
        "type": "subscribed",
        "data": {"portfolios": ["ALPHA"], "symbols": ["RELIANCE"]},
    }
    await publish_committed(
        ("tick", {"symbol": "TCS", "price": "1"}),
        ("tick", {"symbol": "RELIANCE", "price": "2"}),
        ("risk_update", {"portfolio_code": "BETA"}),
        ("risk_update", {"portfolio_code": "ALPHA"}),
        ("alert", {"portfolio_code": "BETA", "message": "not mine"}),
        ("alert", {"portfolio_code": "ALPHA", "message": "mine"}),
        ("alert", {"message": "desk-wide"}),
    )
    received = await ticks_received(communicator)
    assert [
        (e["type"], e["data"].get("symbol") or e["data"].get("message") or e["data"]["portfolio_code"])
        for e in received
    ] == [
        ("tick", "RELIANCE"),
        ("risk_update", "ALPHA"),
        ("alert", "mine"),
        ("alert", "desk-wide"),
    ]

    await communicator.send_json_to({"action": "unsubscribe", "symbols": ["RELIANCE"]})
    assert (await communicator.receive_json_from())["data"]["symbols"] == []
    await publish_committed(("tick", {"symbol": "RELIANCE", "price": "3"}))
    assert await communicator.receive_nothing(timeout=0.5)

    await communicator.send_json_to({"action": "subscribe"})
    assert (await communicator.receive_json_from())["data"] == {"portfolios": None, "symbols": None}
    await publish_committed(("tick", {"symbol": "TCS", "price": "4"}))
    assert (await communicator.receive_json_from())["data"]["symbol"] == "TCS"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"text_data": "not json"}, consumers.ERR_NOT_JSON),
        ({"bytes_data": b"\x00\x01"}, consumers.ERR_NOT_JSON),
        ({"text_data": "[1, 2]"}, consumers.ERR_NOT_OBJECT),
        ({"text_data": "x" * 70_000}, consumers.ERR_TOO_LARGE.format(max=consumers.MAX_MESSAGE_BYTES)),
        ({"text_data": '{"action": ["subscribe"]}'}, consumers.ERR_UNKNOWN_ACTION.format(action="list")),
        ({"text_data": '{"action": "dance"}'}, consumers.ERR_UNKNOWN_ACTION.format(action="dance")),
        ({"text_data": '{"hello": 1}'}, consumers.ERR_UNKNOWN_ACTION.format(action=None)),
        (
            {"text_data": '{"action": "subscribe", "symbols": "RELIANCE"}'},
            consumers.ERR_CODES.format(field="symbols", max=consumers.MAX_CODES, length=consumers.MAX_CODE_LENGTH),
        ),
        (
            {"text_data": '{"action": "subscribe", "portfolios": [1, 2]}'},
            consumers.ERR_CODES.format(field="portfolios", max=consumers.MAX_CODES, length=consumers.MAX_CODE_LENGTH),
        ),
    ],
)
async def test_malformed_messages_get_an_error_event_and_the_socket_stays_open(frame, message):
    communicator = await open_socket(await make_user())
    if "text_data" in frame:
        await communicator.send_to(text_data=frame["text_data"])
    else:
        await communicator.send_to(bytes_data=frame["bytes_data"])
    assert await communicator.receive_json_from() == {"type": "error", "data": {"message": message}}
    await publish_committed(("alert", {"message": "still here"}))
    assert (await communicator.receive_json_from())["data"] == {"message": "still here"}
    await communicator.disconnect()


# ---------------------------------------------------------------------------- heartbeat and coalescing
async def test_an_idle_socket_gets_heartbeats_with_the_latest_seq(settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    await publish_committed(("alert", {"message": "before connecting"}))
    latest = await database_sync_to_async(current_seq)()
    communicator = await open_socket(await make_user())
    first = await communicator.receive_json_from()
    second = await communicator.receive_json_from()
    for beat in (first, second):
        assert beat["type"] == "heartbeat"
        assert beat["seq"] == latest
        assert "server_time" in beat["data"]
    await communicator.disconnect()


async def test_a_socket_open_longer_than_the_group_expiry_still_gets_the_desks_events(settings):
    """The channel layer forgets group members after its group_expiry; an open socket joins its groups again."""
    import asyncio

    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer.get("CONFIG", {}), "group_expiry": 1}}}
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.STREAM_GROUP_REFRESH_SECONDS = 0.3
    communicator = await open_socket(await make_user())
    await asyncio.sleep(3)  # three times the expiry: joined only by the refreshes
    await publish_committed(("alert", {"message": "still watched"}))
    for _ in range(100):
        event = await communicator.receive_json_from()
        if event["type"] == "alert":
            break
    assert event["data"]["message"] == "still watched"
    await communicator.disconnect()


async def test_a_burst_of_ticks_is_coalesced_to_the_latest_per_symbol(settings):
    """The first tick of a quiet socket goes out at once; the rest of the burst as the latest per symbol."""
    settings.STREAM_COALESCE_MS = 300
    communicator = await open_socket(await make_user())
    await publish_committed(
        *[("tick", {"symbol": "RELIANCE", "price": str(price)}) for price in range(1, 6)],
        ("tick", {"symbol": "TCS", "price": "7"}),
    )
    latest = await database_sync_to_async(current_seq)()
    received = await ticks_received(communicator)
    assert [(e["data"]["symbol"], e["data"]["price"], e["seq"]) for e in received] == [
        ("RELIANCE", "1", latest - 5),
        ("RELIANCE", "5", latest - 1),
        ("TCS", "7", latest),
    ]
    await communicator.disconnect()


async def test_a_lone_update_is_sent_at_once_not_after_the_window(settings):
    settings.STREAM_COALESCE_MS = 5000
    communicator = await open_socket(await make_user())
    await publish_committed(("risk_update", {"portfolio_code": "ALPHA", "var": "1"}))
    assert (await communicator.receive_json_from(timeout=2.5))["data"] == {"portfolio_code": "ALPHA", "var": "1"}
    await communicator.disconnect()


async def test_a_batch_of_events_in_one_channel_message_is_taken_apart(settings):
    """publish_many sends many events as one "stream.events" message; each is filtered and coalesced as usual."""
    settings.STREAM_COALESCE_MS = 300
    communicator = await open_socket(await make_user())
    await communicator.send_json_to({"action": "subscribe", "portfolios": ["ALPHA", "BETA"]})
    assert (await communicator.receive_json_from())["type"] == "subscribed"

    def run() -> None:
        with transaction.atomic():
            publish_many("risk_update", [{"portfolio_code": code} for code in ("ALPHA", "GAMMA", "BETA", "ALPHA")])

    await database_sync_to_async(run)()
    latest = await database_sync_to_async(current_seq)()
    received = await ticks_received(communicator)
    # The batch reaches a quiet socket: sent at once, GAMMA filtered out, ALPHA's latest only.
    assert [(e["data"]["portfolio_code"], e["seq"]) for e in received] == [("BETA", latest - 1), ("ALPHA", latest)]
    await communicator.disconnect()


async def test_alerts_are_never_coalesced_and_keep_their_order_after_pending_ticks(settings):
    settings.STREAM_COALESCE_MS = 5000
    communicator = await open_socket(await make_user())
    await publish_committed(
        ("risk_update", {"portfolio_code": "ALPHA", "var": "1"}),
        ("risk_update", {"portfolio_code": "ALPHA", "var": "2"}),
        ("alert", {"message": "one"}),
        ("alert", {"message": "two"}),
    )
    received = [await communicator.receive_json_from() for _ in range(4)]
    assert [(e["type"], e["data"]) for e in received] == [
        ("risk_update", {"portfolio_code": "ALPHA", "var": "1"}),  # a quiet socket sends at once
        ("risk_update", {"portfolio_code": "ALPHA", "var": "2"}),  # held, and sent before the alert
        ("alert", {"message": "one"}),
        ("alert", {"message": "two"}),
    ]
    assert [e["seq"] for e in received] == sorted(e["seq"] for e in received)
    await communicator.disconnect()


# ---------------------------------------------------------------------------- html
async def test_html_sockets_get_rendered_partials_and_nothing_for_types_without_one(settings, stream_templates):
    settings.STREAM_COALESCE_MS = 0
    user = await make_user(username="meera")
    communicator = await open_socket(user, "/ws/risk-stream?format=html")
    await publish_committed(
        ("alert", {"message": "no template yet"}),
        ("risk_update", {"portfolio_code": "HIDDEN", "var": "1"}),
        ("tick", {"symbol": "RELIANCE", "price": "2900.5"}),
    )
    latest = await database_sync_to_async(current_seq)()
    html = await communicator.receive_from()
    assert html.strip() == f'<td id="tick-RELIANCE" hx-swap-oob="true">2900.5 #{latest} for meera</td>'
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_html_sockets_get_rendered_heartbeats(settings, stream_templates):
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    communicator = await open_socket(await make_user(), "/ws/risk-stream?format=html")
    latest = await database_sync_to_async(current_seq)()
    html = await communicator.receive_from()
    assert html.strip() == f'<span id="stream-state" hx-swap-oob="true">live #{latest}</span>'
    await communicator.disconnect()


async def test_a_broken_partial_sends_nothing_and_keeps_the_socket_open(settings, tmp_path):
    (tmp_path / "stream").mkdir()
    (tmp_path / "stream" / "_tick.html").write_text("{% if %}broken")
    (tmp_path / "stream" / "_alert.html").write_text("<p id='alert'>{{ event.message }}</p>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path], "APP_DIRS": False}]
    settings.STREAM_COALESCE_MS = 0
    communicator = await open_socket(await make_user(), "/ws/risk-stream?format=html")
    await publish_committed(("tick", {"symbol": "TCS", "price": "1"}), ("alert", {"message": "still live"}))
    assert await communicator.receive_from() == "<p id='alert'>still live</p>"
    await communicator.disconnect()


# ---------------------------------------------------------------------------- closing sockets
async def test_signing_out_closes_the_users_sockets_with_4401_and_no_one_elses():
    user = await make_user()
    other = await open_socket(await make_user())
    communicator = await open_socket(user)

    def sign_in_and_out() -> None:
        client = Client()
        client.force_login(user)
        client.post("/accounts/logout/")

    await database_sync_to_async(sign_in_and_out)()
    await assert_closed_with(communicator, CLOSE_UNAUTHENTICATED)
    assert await other.receive_nothing(timeout=0.3)
    await communicator.disconnect()
    await other.disconnect()


async def test_disabling_a_user_closes_their_sockets_with_4403():
    user = await make_user()
    communicator = await open_socket(user)

    def disable() -> None:
        user.is_active = False
        user.save()

    await database_sync_to_async(disable)()
    await assert_closed_with(communicator, CLOSE_FORBIDDEN)
    await communicator.disconnect()


async def test_changing_a_users_role_closes_their_sockets_with_4403():
    user = await make_user()
    communicator = await open_socket(user)
    await database_sync_to_async(user_set_role)(user=user, role=Role.ANALYST)
    await assert_closed_with(communicator, CLOSE_FORBIDDEN)
    await communicator.disconnect()


# ---------------------------------------------------------------------------- events the channel layer lost
async def send_through_layer(seq: int) -> None:
    """Deliver an event with `seq` to the desk group directly, as if the ones before it had been lost."""
    from channels.layers import get_channel_layer

    from apps.stream.publish import DESK_GROUP

    event = {"type": "alert", "seq": seq, "data": {"n": seq}}
    await get_channel_layer().group_send(DESK_GROUP, {"type": "stream.event", "event": event})


async def heartbeats_until(communicator: Communicator, seq: int) -> list[dict]:
    """Return the heartbeats received until (and including) the first one at `seq`, skipping other events."""
    beats = []
    while True:
        message = await communicator.receive_json_from()
        if message["type"] == "heartbeat":
            beats.append(message)
            if message["seq"] == seq:
                return beats


async def test_a_heartbeat_names_where_to_recover_events_the_layer_lost(settings, monkeypatch):
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    monkeypatch.setattr(consumers, "LATE_GRACE_SECONDS", 0)
    communicator = await open_socket(await make_user())
    latest = await database_sync_to_async(current_seq)()
    await send_through_layer(latest + 3)
    beats = await heartbeats_until(communicator, latest + 3)
    assert beats[-1]["data"]["missed_after"] == latest
    later = await heartbeats_until(communicator, latest + 3)
    assert "missed_after" not in later[0]["data"]
    await communicator.disconnect()


async def test_an_event_arriving_late_is_not_reported_as_lost(settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.05
    communicator = await open_socket(await make_user())
    latest = await database_sync_to_async(current_seq)()
    await send_through_layer(latest + 2)
    await send_through_layer(latest + 1)
    beats = await heartbeats_until(communicator, latest + 2)
    beats += await heartbeats_until(communicator, latest + 2)
    assert not any("missed_after" in beat["data"] for beat in beats)
    await communicator.disconnect()


async def test_api_logout_closes_the_tokens_sockets_with_4401_but_not_the_users_browser_sessions():
    user = await make_user()
    token = await database_sync_to_async(Token.objects.create)(user=user)
    by_token = await open_app_socket(headers=[(b"authorization", f"Bearer {token.key}".encode())])
    by_session = await open_socket(user)

    def api_logout() -> None:
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
        assert client.post("/api/v1/auth/logout").status_code == 204

    await database_sync_to_async(api_logout)()
    await assert_closed_with(by_token, CLOSE_UNAUTHENTICATED)
    assert await by_session.receive_nothing(timeout=0.3)
    await by_token.disconnect()
    await by_session.disconnect()


async def test_a_session_that_owes_its_two_factor_code_is_closed_and_a_verified_one_is_not():
    """The OTP middleware does not see sockets: the consumer itself refuses a session past the password only."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from apps.stream.consumers import RiskStreamConsumer

    admin = await make_user(role=Role.ADMIN)  # Admins always have (or owe) an authenticator device
    owing = Communicator(RiskStreamConsumer.as_asgi(), "/ws/risk-stream")
    owing.scope.update(user=admin, session={})
    assert (await owing.connect())[0]
    await assert_closed_with(owing, CLOSE_UNAUTHENTICATED)
    await owing.disconnect()
    verified = Communicator(RiskStreamConsumer.as_asgi(), "/ws/risk-stream")
    verified.scope.update(user=admin, session={DEVICE_ID_SESSION_KEY: admin.totp_device.persistent_id})
    assert (await verified.connect())[0]
    await verified.send_json_to({"action": "subscribe"})
    assert (await verified.receive_json_from())["type"] == "subscribed"
    await verified.disconnect()
