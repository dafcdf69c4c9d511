"""The OpenAPI schema, Swagger UI and ReDoc; served from our own static files, never a CDN."""

import re

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

MAIN_PATHS = [
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    "/api/v1/auth/me",
    "/api/v1/instruments",
    "/api/v1/instruments/{symbol}",
    "/api/v1/prices",
    "/api/v1/quotes",
    "/api/v1/fx-rates",
    "/api/v1/portfolios",
    "/api/v1/portfolios/{code}",
    "/api/v1/portfolios/{code}/positions",
    "/api/v1/positions",
    "/api/v1/trades",
    "/api/v1/trades/{id}",
    "/api/v1/health",
]
EXTERNAL_URL = re.compile(r"""(?:src|href)=["']?(?:https?:)?//""")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_lists_the_main_paths(schema):
    assert set(MAIN_PATHS) <= set(schema["paths"])


def test_the_schema_declares_bearer_authentication(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert {"bearerAuth": []} in schema["paths"]["/api/v1/trades"]["post"]["security"]


def test_login_and_health_need_no_authentication(schema):
    assert schema["paths"]["/api/v1/auth/login"]["post"].get("security") in (None, [], [{}])
    assert schema["paths"]["/api/v1/health"]["get"].get("security") in (None, [], [{}])


def test_trades_are_immutable_in_the_schema(schema):
    assert set(schema["paths"]["/api/v1/trades/{id}"]) == {"get"}
    assert set(schema["paths"]["/api/v1/trades"]) == {"get", "post"}


def test_the_schema_validates_without_warnings(tmp_path):
    """Covers every endpoint under /api/v1, including those other apps add (e.g. imports)."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").stat().st_size > 0


@pytest.mark.django_db
def test_swagger_ui_is_served_from_our_static_files():
    response = APIClient().get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert not EXTERNAL_URL.search(html)


@pytest.mark.django_db
def test_redoc_is_served_from_our_static_files():
    response = APIClient().get("/api/redoc")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in html


@pytest.mark.django_db
def test_redoc_loads_nothing_from_another_host():
    html = APIClient().get("/api/redoc").content.decode()
    assert not EXTERNAL_URL.search(html)
