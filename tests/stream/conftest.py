import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import transaction

from apps.stream.consumers import RiskStreamConsumer
from apps.stream.publish import publish

TEST_TEMPLATES = Path(__file__).parent / "templates"


@pytest.fixture(autouse=True)
def _private_channel_layer(settings):
    """Give each test a channel layer of its own, so no group traffic crosses tests or suites sharing Redis."""
    layers = django_settings.CHANNEL_LAYERS
    redis = layers["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    if redis:
        config = {**layers["default"]["CONFIG"], "prefix": f"riskradar-test-{uuid.uuid4().hex[:8]}"}
        settings.CHANNEL_LAYERS = {"default": {**layers["default"], "CONFIG": config}}
    else:
        settings.CHANNEL_LAYERS = {"default": {**layers["default"]}}
    yield
    if redis:

        async def clean_up():
            layer = get_channel_layer()
            await layer.flush()
            await layer.close_pools()

        async_to_sync(clean_up)()


@pytest.fixture
def stream_templates(settings):
    """Render partials from tests/stream/templates only; types without a template there render nothing."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [TEST_TEMPLATES], "APP_DIRS": False}]


async def open_socket(user, path: str = "/ws/risk-stream") -> WebsocketCommunicator:
    """Connect the consumer as `user`, as the auth middleware would have set the scope."""
    communicator = WebsocketCommunicator(RiskStreamConsumer.as_asgi(), path)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def publish_committed(*events: tuple[str, dict]) -> None:
    """Publish the events in one transaction and commit it."""

    def run() -> None:
        with transaction.atomic():
            for event_type, data in events:
                publish(event_type, data)

    await database_sync_to_async(run)()
