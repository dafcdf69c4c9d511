import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.test import Client as DjangoClient
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from apps.accounts.models import Role
from tests.factories import UserFactory

ROLES = [Role.VIEWER, Role.ANALYST, Role.ADMIN]


class Client(DjangoClient):
    """Django's test client, whose force_login also passes two-factor sign-in when the user has an authenticator app.

    Signing in for real takes a code from the app (tests/accounts/test_two_factor.py); this marks the session as
    verified by the user's device, as django_otp.login does once the code is right. The rule itself is not
    relaxed: an Admin without a device (UserFactory(role=Role.ADMIN, two_factor=False)) is still sent to set one
    up, and force_login(user, verified=False) leaves a session that still owes its code.
    """

    def force_login(self, user, backend=None, *, verified: bool = True) -> None:
        super().force_login(user, backend)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
        if verified and device is not None:
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()


@pytest.fixture
def client() -> Client:
    """The test client (overrides pytest-django's), with the two-factor-aware force_login above."""
    return Client()


@pytest.fixture(autouse=True)
def _fresh_content_type_cache():
    """Forget cached content types: a transactional test's flush deletes the rows the cache points at."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer", role=Role.VIEWER)


@pytest.fixture
def analyst(db):
    return UserFactory(username="analyst", role=Role.ANALYST)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", role=Role.ADMIN)


@pytest.fixture
def user_for_role(db):
    """Return a function that makes a signed-up user of a role (None for anonymous)."""

    def make(role: str | None):
        if role is None:
            return None
        return UserFactory(username=f"{role.lower()}-user", role=role)

    return make


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def api_as(user_for_role):
    """Return a function giving an APIClient authenticated as a user of the role (anonymous for None)."""

    def make(role: str | None) -> APIClient:
        client = APIClient()
        user = user_for_role(role)
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def client_as(client, user_for_role):
    """Return a function giving the Django test client signed in as a user of the role (anonymous for None)."""

    def make(role: str | None):
        user = user_for_role(role)
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def private_channel_layer(settings):
    """Give the test a channel layer of its own, so no group traffic crosses tests or suites sharing Redis.

    Yields whether the layer is Redis (its keys get a prefix of their own, flushed afterwards).
    """
    layers = django_settings.CHANNEL_LAYERS
    redis = layers["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    if redis:
        config = {**layers["default"]["CONFIG"], "prefix": f"riskradar-test-{uuid.uuid4().hex[:8]}"}
        settings.CHANNEL_LAYERS = {"default": {**layers["default"], "CONFIG": config}}
    else:
        settings.CHANNEL_LAYERS = {"default": {**layers["default"]}}
    yield redis
    if redis:

        async def clean_up():
            layer = get_channel_layer()
            await layer.flush()
            await layer.close_pools()

        async_to_sync(clean_up)()
