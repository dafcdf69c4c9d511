"""Import pages: upload, preview (nothing written), confirm (applied); Analyst and Admin only."""

import datetime as dt
import os
import re
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse

from apps.accounts.models import Role
from apps.market.models import Instrument, PriceBar
from apps.portfolios import import_views
from apps.portfolios.imports import FORMATS
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.uploads import MAX_AGE_SECONDS, upload_dir
from tests.factories import InstrumentFactory, UserFactory

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "portfolios" / "imports"
HTMX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    """Keep stored uploads in a temporary directory."""
    settings.VAR_DIR = tmp_path
    return tmp_path


def upload(name: str = "instruments.csv", content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content if content is not None else (DATA / name).read_bytes(), "text/csv")


def token_in(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the preview has no confirm form"
    return match.group(1)


def test_anonymous_users_are_sent_to_login(client, settings):
    try:
        reverse(settings.LOGIN_URL)
    except NoReverseMatch:
        settings.LOGIN_URL = "/accounts/login/"  # the login page belongs to accounts and may not exist yet
    for url in (reverse("imports:index"), reverse("imports:upload", kwargs={"kind": "prices"})):
        response = client.get(url)
        assert response.status_code == 302
        assert "login" in response["Location"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", reverse("imports:index")),
        ("get", reverse("imports:upload", kwargs={"kind": "trades"})),
        ("post", reverse("imports:upload", kwargs={"kind": "trades"})),
        ("post", reverse("imports:apply", kwargs={"kind": "trades"})),
        ("get", reverse("imports:sample", kwargs={"kind": "trades"})),
    ],
)
def test_viewers_are_forbidden(client_as, method, url):
    assert getattr(client_as(Role.VIEWER), method)(url).status_code == 403


@pytest.mark.parametrize("role", [Role.ANALYST, Role.ADMIN])
def test_index_lists_the_four_kinds_with_their_headers(client_as, role):
    response = client_as(role).get(reverse("imports:index"))
    assert response.status_code == 200
    html = response.content.decode()
    for fmt in FORMATS.values():
        assert f'id="import-kind-{fmt.kind}"' in html
        assert reverse("imports:upload", kwargs={"kind": fmt.kind}) in html
        assert fmt.required[0] in html


def test_sample_csv_downloads(client_as):
    response = client_as(Role.ANALYST).get(reverse("imports:sample", kwargs={"kind": "positions"}))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode() == FORMATS["positions"].sample


def test_upload_form_shows_the_fields_of_the_kind(client_as):
    client = client_as(Role.ANALYST)
    prices = client.get(reverse("imports:upload", kwargs={"kind": "prices"})).content.decode()
    positions = client.get(reverse("imports:upload", kwargs={"kind": "positions"})).content.decode()
    assert 'name="symbol"' in prices and 'name="as_of"' not in prices
    assert 'name="as_of"' in positions and 'name="symbol"' not in positions
    assert 'hx-encoding="multipart/form-data"' in prices and "csrfmiddlewaretoken" in prices


def test_templates_have_no_inline_scripts_or_event_handlers():
    """A Content-Security-Policy will forbid both."""
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text()
        assert "<script" not in source, path
        assert not re.search(r"\son[a-z]+\s*=", source), path


def test_htmx_preview_writes_nothing_and_confirm_applies_it(client_as, var_dir):
    client = client_as(Role.ANALYST)
    url = reverse("imports:upload", kwargs={"kind": "instruments"})
    preview = client.post(url, {"file": upload()}, **HTMX)
    assert preview.status_code == 200
    html = preview.content.decode()
    assert html.lstrip().startswith('<section id="import-preview"')
    assert "INFY-C1800" in html and 'id="import-counts"' in html
    assert not Instrument.objects.exists()
    token = token_in(html)
    assert (upload_dir() / f"{token}.csv").exists()

    result = client.post(reverse("imports:apply", kwargs={"kind": "instruments"}), {"token": token}, **HTMX)
    html = result.content.decode()
    assert html.lstrip().startswith('<section id="import-result"')
    assert "Imported: 4 created" in html
    assert Instrument.objects.count() == 4
    assert not (upload_dir() / f"{token}.csv").exists()

    again = client.post(reverse("imports:apply", kwargs={"kind": "instruments"}), {"token": token}, **HTMX)
    assert import_views.ERR_PREVIEW_EXPIRED in again.content.decode()
    assert Instrument.objects.count() == 4


def test_plain_form_posts_render_the_full_page(client_as):
    client = client_as(Role.ADMIN)
    url = reverse("imports:upload", kwargs={"kind": "instruments"})
    preview = client.post(url, {"file": upload()})
    html = preview.content.decode()
    assert 'id="import-form"' in html and 'id="import-preview"' in html
    client.post(reverse("imports:apply", kwargs={"kind": "instruments"}), {"token": token_in(html)})
    assert Instrument.objects.count() == 4


def test_a_preview_with_errors_lists_them_and_offers_no_confirm(client_as):
    InstrumentFactory(symbol="INFY")
    content = b"symbol,date,close\nINFY,2024-01-02,1\nINFY,2024-01-03,NaN\n"
    response = client_as(Role.ANALYST).post(
        reverse("imports:upload", kwargs={"kind": "prices"}), {"file": upload("p.csv", content)}, **HTMX
    )
    html = response.content.decode()
    assert 'id="import-errors"' in html
    assert "NaN" in html and "Nothing will be imported" in html
    assert 'name="token"' not in html
    assert list(upload_dir().iterdir()) == []


def test_partial_preview_then_confirm_applies_the_valid_rows_with_the_previewed_options(client_as):
    InstrumentFactory(symbol="INFY")
    content = b"Date,Close\n2024-01-02,1\n2024-01-03,NaN\n"
    client = client_as(Role.ANALYST)
    preview = client.post(
        reverse("imports:upload", kwargs={"kind": "prices"}),
        {"file": upload("p.csv", content), "partial": "on", "symbol": "infy"},
        **HTMX,
    )
    token = token_in(preview.content.decode())
    result = client.post(reverse("imports:apply", kwargs={"kind": "prices"}), {"token": token}, **HTMX)
    assert "1 line rejected" in result.content.decode()
    assert list(PriceBar.objects.values_list("date", flat=True)) == [dt.date(2024, 1, 2)]


def test_a_file_error_is_shown(client_as):
    response = client_as(Role.ANALYST).post(
        reverse("imports:upload", kwargs={"kind": "trades"}),
        {"file": upload("t.csv", "external_id\n".encode("utf-16"))},
        **HTMX,
    )
    assert E.ERR_UTF16.format(encoding="UTF-16") in response.content.decode()


def test_an_oversized_upload_is_refused(client_as, settings):
    settings.IMPORT_MAX_BYTES = 10
    response = client_as(Role.ANALYST).post(
        reverse("imports:upload", kwargs={"kind": "instruments"}), {"file": upload()}, **HTMX
    )
    assert E.ERR_TOO_LARGE.format(limit=10) in response.content.decode()
    assert not Instrument.objects.exists()


def test_a_missing_file_is_a_form_error(client_as):
    response = client_as(Role.ANALYST).post(reverse("imports:upload", kwargs={"kind": "instruments"}), {}, **HTMX)
    assert "This field is required." in response.content.decode()


def test_a_token_from_another_session_is_refused(client_as, client):
    analyst = client_as(Role.ANALYST)
    preview = analyst.post(reverse("imports:upload", kwargs={"kind": "instruments"}), {"file": upload()}, **HTMX)
    token = token_in(preview.content.decode())
    analyst.logout()
    client.force_login(UserFactory(username="other-analyst", role=Role.ANALYST))
    response = client.post(reverse("imports:apply", kwargs={"kind": "instruments"}), {"token": token}, **HTMX)
    assert import_views.ERR_PREVIEW_EXPIRED in response.content.decode()
    assert not Instrument.objects.exists()


def test_unknown_kind_is_404(client_as):
    assert client_as(Role.ANALYST).get("/imports/fx/").status_code == 404


def test_abandoned_uploads_are_purged_when_a_new_one_is_stored(client_as):
    stale = upload_dir() / ("x" * 32 + ".csv")
    stale.write_text("old")
    os.utime(stale, (time.time() - MAX_AGE_SECONDS - 1,) * 2)
    client_as(Role.ANALYST).post(reverse("imports:upload", kwargs={"kind": "instruments"}), {"file": upload()}, **HTMX)
    assert not stale.exists()
    assert len(list(upload_dir().iterdir())) == 1
