"""POST /api/v1/imports/{kind}: the same imports over HTTP, for Analyst and Admin only."""

import datetime as dt
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.models import Role
from apps.market.models import Instrument, PriceBar
from apps.portfolios.imports import errors as E
from apps.portfolios.models import Trade
from tests.factories import InstrumentFactory, PortfolioFactory

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
pytestmark = pytest.mark.django_db


def url(kind: str) -> str:
    return f"/api/v1/imports/{kind}"


def upload(name: str = "instruments.csv", content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content if content is not None else (DATA / name).read_bytes(), "text/csv")


@pytest.mark.parametrize(("role", "expected"), [(None, {401, 403}), (Role.VIEWER, {403})])
def test_anonymous_and_viewers_cannot_import(api_as, role, expected):
    response = api_as(role).post(url("instruments"), {"file": upload()}, format="multipart")
    assert response.status_code in expected
    assert not Instrument.objects.exists()


@pytest.mark.parametrize("role", [Role.ANALYST, Role.ADMIN])
def test_analysts_and_admins_import_and_a_second_import_changes_nothing(api_as, role):
    client = api_as(role)
    response = client.post(url("instruments"), {"file": upload()}, format="multipart")
    assert response.status_code == 201, response.data
    body = response.json()
    assert (body["status"], body["applied"], body["created"], body["rows"]) == ("applied", True, 4, 4)
    assert body["changes"][0] == {"line": 2, "action": "create", "key": "INFY", "detail": "Equity INR"}
    again = client.post(url("instruments"), {"file": upload()}, format="multipart")
    assert again.status_code == 200
    assert (again.json()["unchanged"], again.json()["created"]) == (4, 0)


def test_dry_run_answers_200_and_writes_nothing(api_as):
    response = api_as(Role.ANALYST).post(url("instruments"), {"file": upload(), "dry_run": "true"}, format="multipart")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["created"]) == ("preview", 4)
    assert not Instrument.objects.exists()


def test_a_bad_line_answers_400_with_every_error_and_writes_nothing(api_as):
    InstrumentFactory(symbol="INFY")
    content = b"symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,inf\nNOPE,2024-01-04,1\n"
    response = api_as(Role.ANALYST).post(url("prices"), {"file": upload("p.csv", content)}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "rejected"
    assert body["errors"] == [
        {"line": 3, "column": "close", "message": E.ERR_NOT_FINITE.format(value="inf")},
        {"line": 4, "column": "symbol", "message": E.ERR_UNKNOWN_SYMBOL.format(symbol="NOPE")},
    ]
    assert not PriceBar.objects.exists()


def test_partial_applies_the_valid_lines_and_reports_the_rejected_ones(api_as):
    InstrumentFactory(symbol="INFY")
    content = b"Date,Close\n2024-01-02,1\n2024-01-03,-1\n"
    response = api_as(Role.ANALYST).post(
        url("prices"), {"file": upload("p.csv", content), "partial": "true", "symbol": "INFY"}, format="multipart"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["rejected"]) == (1, 1)
    assert body["errors"] == [{"line": 3, "column": "Close", "message": E.ERR_POSITIVE}]
    assert PriceBar.objects.count() == 1


def test_partial_with_every_line_rejected_is_400(api_as):
    InstrumentFactory(symbol="INFY")
    content = b"Date,Close\n2024-01-03,-1\n"
    response = api_as(Role.ANALYST).post(
        url("prices"), {"file": upload("p.csv", content), "partial": "true", "symbol": "INFY"}, format="multipart"
    )
    assert response.status_code == 400


def test_an_unusable_file_is_400_with_a_file_error(api_as):
    response = api_as(Role.ANALYST).post(url("trades"), {"file": upload("t.csv", b"")}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["file_error"] is True
    assert body["errors"] == [{"line": None, "column": "", "message": E.ERR_EMPTY}]


def test_positions_take_as_of_and_trades_record_the_user(api_as):
    client = api_as(Role.ANALYST)
    PortfolioFactory(code="ALPHA")
    PortfolioFactory(code="BETA")
    InstrumentFactory(symbol="INFY")
    InstrumentFactory(symbol="TCS")
    response = client.post(
        url("positions"), {"file": upload("positions.csv"), "as_of": "2024-01-02T09:00:00"}, format="multipart"
    )
    assert response.status_code == 201
    assert set(Trade.objects.values_list("traded_at", flat=True)) == {dt.datetime(2024, 1, 2, 9, tzinfo=dt.UTC)}
    response = client.post(url("trades"), {"file": upload("trades.csv")}, format="multipart")
    assert response.status_code == 201
    assert {t.booked_by.username for t in Trade.objects.filter(source="import")} == {"analyst-user"}


def test_a_request_without_a_file_is_400(api_as):
    response = api_as(Role.ANALYST).post(url("trades"), {}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["file_error"]) == ("rejected", True)
    assert body["errors"] == [{"line": None, "column": "file", "message": "No file was submitted."}]


def test_unknown_kind_is_404(api_as):
    assert api_as(Role.ANALYST).post(url("fx"), {"file": upload()}, format="multipart").status_code == 404


def test_openapi_schema_describes_the_multipart_upload_and_the_result():
    patterns = [path("api/v1/imports/", include("apps.portfolios.api.import_urls"))]
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    (operation_path,) = schema["paths"]
    operation = schema["paths"][operation_path]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    request_schema = schema["components"]["schemas"][body]
    assert request_schema["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": "The CSV file, UTF-8 with or without BOM.",
    }
    assert "file" in request_schema["required"]
    assert set(operation["responses"]) == {"200", "201", "400"}
    kind = next(p for p in operation["parameters"] if p["name"] == "kind")
    assert kind["schema"]["enum"] == ["instruments", "positions", "prices", "trades"]
    result = schema["components"]["schemas"]["ImportResult"]
    assert {"errors", "changes", "created", "updated", "unchanged", "rejected", "status"} <= set(result["properties"])


def test_an_applied_import_is_recorded_in_the_audit_trail_and_a_preview_or_refusal_is_not(api_as):
    from apps.audit.models import AuditAction, AuditEvent

    client = api_as(Role.ANALYST)
    client.post(url("instruments"), {"file": upload(), "dry_run": "true"}, format="multipart")
    client.post(url("prices"), {"file": upload("p.csv", b"symbol,date,close\nNOPE,2024-01-02,1\n")}, format="multipart")
    assert not AuditEvent.objects.filter(action=AuditAction.IMPORT).exists()
    client.post(url("instruments"), {"file": upload()}, format="multipart")
    event = AuditEvent.objects.get(action=AuditAction.IMPORT)
    assert (event.object_type, event.object_repr, event.actor_name) == (
        "imports.instruments",
        "instruments.csv",
        "analyst-user",
    )
    assert {k: event.detail[k] for k in ("rows", "created", "updated", "rejected")} == {
        "rows": 4,
        "created": 4,
        "updated": 0,
        "rejected": 0,
    }
    assert event.detail["changes"][0] == {"line": 2, "action": "create", "key": "INFY", "detail": "Equity INR"}
