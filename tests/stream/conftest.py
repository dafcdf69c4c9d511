from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import transaction

from apps.stream.consumers import RiskStreamConsumer
from apps.stream.publish import publish
from tests.stream.communicator import Communicator

TEST_TEMPLATES = Path(__file__).parent / "templates"


@pytest.fixture(autouse=True)
def _private_channel_layer(private_channel_layer):
    """Every stream test gets a channel layer of its own (tests/conftest.py)."""
    return private_channel_layer


@pytest.fixture
def stream_templates(settings):
    """Render partials from tests/stream/templates only; types without a template there render nothing."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [TEST_TEMPLATES], "APP_DIRS": False}]


async def open_socket(user, path: str = "/ws/risk-stream") -> Communicator:
    """Connect the consumer as `user`, as the auth middleware would have set the scope."""
    communicator = Communicator(RiskStreamConsumer.as_asgi(), path)
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
