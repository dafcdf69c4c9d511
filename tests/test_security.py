"""Browser-facing security: the Content-Security-Policy, CORS for configured origins only, the production
settings passing `manage.py check --deploy`."""

import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

from apps.accounts.models import Role
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def test_pages_forbid_inline_scripts_and_styles_and_framing(client):
    client.force_login(UserFactory(role=Role.VIEWER))
    response = client.get(reverse("dashboard"))
    directives = policy(response)
    assert directives["script-src"] == "script-src 'self'"
    assert directives["style-src"] == "style-src 'self'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    # and the page itself holds no inline script to be refused
    assert "<script>" not in response.content.decode()


def test_the_api_docs_allow_only_their_own_inline_styles(client):
    response = client.get(reverse("api-docs"))
    directives = policy(response)
    assert directives["script-src"] == "script-src 'self'"
    assert "'unsafe-inline'" in directives["style-src"]
    assert "<script>" not in response.content.decode()  # the start-up script comes from ?script


@override_settings(CORS_ALLOWED_ORIGINS=["https://desk.example.com"])
def test_cross_origin_api_calls_only_from_configured_origins(client):
    allowed = client.options(
        "/api/v1/instruments", HTTP_ORIGIN="https://desk.example.com", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert allowed["Access-Control-Allow-Origin"] == "https://desk.example.com"
    assert "Access-Control-Allow-Credentials" not in allowed
    other = client.options(
        "/api/v1/instruments", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert "Access-Control-Allow-Origin" not in other
    page = client.get(reverse("accounts:login"), HTTP_ORIGIN="https://desk.example.com")
    assert "Access-Control-Allow-Origin" not in page  # pages are never shared cross-origin


def test_production_settings_pass_the_deploy_checks(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RISKRADAR_VAR_DIR": str(tmp_path),
        "RISKRADAR_PRODUCTION": "true",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "risk.example.com",
        "DJANGO_SETTINGS_MODULE": "riskradar.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
