import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from tests.factories import UserFactory

ROLES = [Role.VIEWER, Role.ANALYST, Role.ADMIN]


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
