"""Sign-in, sign-out, the settings page, and the shared layout every page is built on."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.staticfiles import finders
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.accounts.templatetags.riskradar_ui import riskradar_version
from tests.factories import InstrumentFactory, PortfolioFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # what UserFactory sets

WHO = [
    pytest.param("anonymous", 302, id="anonymous"),
    pytest.param("no-role", 403, id="no-role"),
    pytest.param(Role.VIEWER, 200, id="viewer"),
    pytest.param(Role.ANALYST, 200, id="analyst"),
    pytest.param(Role.ADMIN, 200, id="admin"),
]

VENDOR_FILES = [
    "vendor/htmx-2.0.11/htmx.min.js",
    "vendor/htmx-ext-ws-2.0.4/ws.js",
    "vendor/chart.js-4.6.1/chart.umd.min.js",
    "vendor/bootstrap-5.3.8/css/bootstrap.min.css",
    "vendor/bootstrap-5.3.8/js/bootstrap.bundle.min.js",
]


@pytest.fixture
def client_for(client):
    """Return a function giving the test client signed in as `who`: a role, "no-role" or "anonymous"."""

    def make(who: str):
        if who == "anonymous":
            return client
        if who == "no-role":
            client.force_login(UserFactory(username="no-role"))
        else:
            client.force_login(UserFactory(username=f"{who.lower()}-user", role=who))
        return client

    return make


def html_of(response) -> str:
    return response.content.decode()


# ------------------------------------------------------------------------------ sign in and out


def test_login_page_shows_a_sign_in_form(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    html = html_of(response)
    assert 'id="login-card"' in html
    assert 'name="username"' in html
    assert 'type="password"' in html
    assert 'id="user-menu"' not in html  # no navigation for anonymous users


def test_login_with_good_credentials_goes_to_the_dashboard(client):
    UserFactory(username="ana", role=Role.ANALYST)
    response = client.post(reverse("accounts:login"), {"username": "ana", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200


def test_login_follows_next(client):
    UserFactory(username="ana", role=Role.ANALYST)
    target = reverse("market:instrument-list")
    login_page = client.get(f"{reverse('accounts:login')}?next={target}")
    assert f'name="next" value="{target}"' in html_of(login_page)
    response = client.post(reverse("accounts:login"), {"username": "ana", "password": PASSWORD, "next": target})
    assert response.url == target


def test_login_with_a_wrong_password_is_refused(client):
    UserFactory(username="ana", role=Role.ANALYST)
    response = client.post(reverse("accounts:login"), {"username": "ana", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in html_of(response)
    assert SESSION_KEY not in client.session


def test_signed_in_user_skips_the_login_page(client_for):
    response = client_for(Role.VIEWER).get(reverse("accounts:login"))
    assert response.status_code == 302
    assert response.url == reverse("dashboard")


def test_logout_by_post_signs_out_and_returns_to_login(client_for):
    client = client_for(Role.VIEWER)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert response.url == reverse("accounts:login")
    assert SESSION_KEY not in client.session
    assert "You have signed out." in html_of(client.get(response.url))
    assert client.get(reverse("portfolios:list")).status_code == 302


def test_logout_by_get_is_refused(client_for):
    client = client_for(Role.VIEWER)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert SESSION_KEY in client.session


def test_pages_have_a_logout_form_that_posts(client_for):
    html = html_of(client_for(Role.VIEWER).get(reverse("portfolios:list")))
    form = re.search(r'<form method="post" action="/accounts/logout/" id="logout-form">(.*?)</form>', html, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(1)


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(("who", "status"), WHO)
def test_settings_page_permissions(client_for, who, status):
    url = reverse("accounts:settings")
    response = client_for(who).get(url)
    assert response.status_code == status
    if status == 302:
        assert response.url == f"{reverse('accounts:login')}?next={url}"


def test_settings_saves_the_display_time_zone_and_the_footer_shows_it(client_for):
    client = client_for(Role.VIEWER)
    response = client.post(reverse("accounts:settings"), {"timezone": "Europe/London"})
    assert response.status_code == 302
    assert User.objects.get(username="viewer-user").timezone == "Europe/London"
    html = html_of(client.get(response.url))
    assert "Times are now shown in Europe/London." in html
    assert re.search(r'id="display-timezone">\s*Times shown in <strong>Europe/London</strong>', html)
    assert '<option value="Europe/London" selected>' in html


def test_settings_refuses_an_unknown_time_zone(client_for):
    client = client_for(Role.VIEWER)
    response = client.post(reverse("accounts:settings"), {"timezone": "Mars/Olympus_Mons"})
    assert response.status_code == 200
    assert "is-invalid" in html_of(response)
    assert User.objects.get(username="viewer-user").timezone == ""


def test_settings_empty_time_zone_means_the_site_default(client_for):
    client = client_for(Role.VIEWER)
    client.post(reverse("accounts:settings"), {"timezone": "Europe/London"})
    client.post(reverse("accounts:settings"), {"timezone": ""})
    html = html_of(client.get(reverse("portfolios:list")))
    assert f"Times shown in <strong>{settings.DISPLAY_TIME_ZONE}</strong>" in html


# ------------------------------------------------------------------------------ the layout on every page


def _pages() -> list[str]:
    PortfolioFactory(code="LAYOUT")
    InstrumentFactory(symbol="LAYOUT")
    return [
        reverse("portfolios:list"),
        reverse("portfolios:detail", args=["LAYOUT"]),
        reverse("market:instrument-list"),
        reverse("market:instrument-detail", args=["LAYOUT"]),
        reverse("accounts:settings"),
    ]


def assert_csp_clean(html: str) -> None:
    """Assert the page has no inline script, no inline event handler and no asset from another site."""
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), "asset from another site"
    assert "http://" not in html
    assert "https://" not in html


def test_every_page_is_csp_clean_and_has_the_layout(client_for):
    client = client_for(Role.ADMIN)
    for url in _pages():
        html = html_of(client.get(url))
        assert_csp_clean(html)
        assert 'id="theme-toggle"' in html, url
        assert 'data-bs-theme-value="dark"' in html
        assert '<script src="/static/vendor/htmx-2.0.11/htmx.min.js"></script>' in html
        assert '<script src="/static/js/riskradar.js"></script>' in html
        assert '<link rel="stylesheet" href="/static/vendor/bootstrap-5.3.8/css/bootstrap.min.css">' in html
        csrf = client.cookies["csrftoken"].value
        body = re.search(r"<body[^>]*>", html).group(0)
        assert "hx-headers='{&quot;X-CSRFToken&quot;" not in body  # the JSON must not be entity-escaped
        assert re.search(r"""hx-headers='\{"X-CSRFToken": "[A-Za-z0-9]{32,64}"\}'""", body), body
        assert csrf  # the token cookie is set, so htmx POSTs pass the CSRF check
        assert f'id="app-version">{riskradar_version()}<' in html
        # htmx would strip the <script type="application/json"> data of swapped fragments.
        assert "allowScriptTags" not in html


def test_login_and_error_pages_are_csp_clean(client_for):
    assert_csp_clean(html_of(client_for("anonymous").get(reverse("accounts:login"))))
    client = client_for("no-role")
    forbidden = client.get(reverse("portfolios:list"))
    assert forbidden.status_code == 403
    assert "Your account has no role yet" in html_of(forbidden)
    assert 'href="/portfolios/"' not in html_of(forbidden)  # no links that would only lead to more refusals
    assert_csp_clean(html_of(forbidden))
    assert_csp_clean(html_of(client.get("/no/such/page/")))


def test_footer_shows_version_and_time_zone(client_for):
    html = html_of(client_for(Role.VIEWER).get(reverse("portfolios:list")))
    version = Path(settings.BASE_DIR / "pyproject.toml").read_text()
    assert f'version = "{riskradar_version()}"' in version
    assert f"Times shown in <strong>{settings.DISPLAY_TIME_ZONE}</strong>" in html


@pytest.mark.parametrize(
    ("role", "imports", "admin", "badge"),
    [
        (Role.VIEWER, False, False, "Viewer"),
        (Role.ANALYST, True, False, "Analyst"),
        (Role.ADMIN, True, True, "Admin"),
    ],
)
def test_navigation_shows_what_the_role_may_use(client_for, role, imports, admin, badge):
    html = html_of(client_for(role).get(reverse("portfolios:list")))
    assert ('data-nav="imports"' in html) is imports
    assert (f'href="{reverse("imports:index")}"' in html) is imports
    assert ('data-nav="admin"' in html) is admin
    assert '<span class="badge role-badge text-bg-' in html
    assert f">{badge}</span>" in html
    assert 'href="/api/docs"' in html
    assert 'href="/portfolios/"' in html
    assert 'href="/market/instruments/"' in html


def test_current_section_is_marked_in_the_navigation(client_for):
    html = html_of(client_for(Role.VIEWER).get(reverse("market:instrument-list")))
    assert re.search(r'class="nav-link active" aria-current="page"\s+href="/market/instruments/"', html)


def test_messages_render_as_dismissible_alerts(client_for):
    client = client_for(Role.VIEWER)
    html = html_of(client.post(reverse("accounts:settings"), {"timezone": "Asia/Tokyo"}, follow=True))
    assert re.search(r'<div class="alert alert-success alert-dismissible fade show"', html)
    assert 'data-bs-dismiss="alert"' in html


# ------------------------------------------------------------------------------ vendored static files


@pytest.mark.parametrize("path", VENDOR_FILES)
def test_vendored_files_are_served_by_whitenoise(client, path):
    """With DEBUG off (as in tests) WhiteNoise serves the vendored files itself, no CDN involved."""
    assert not settings.DEBUG
    assert finders.find(path) is not None
    response = client.get(f"{settings.STATIC_URL}{path}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] in {"text/javascript", "application/javascript", "text/css"}
    body = b"".join(response.streaming_content)
    assert len(body) > 1000


def test_our_static_files_are_served(client):
    for path in ("css/riskradar.css", "js/riskradar.js"):
        assert client.get(f"{settings.STATIC_URL}{path}").status_code == 200


def test_every_vendored_package_has_its_licence_and_source_maps():
    vendor = Path(settings.BASE_DIR) / "static" / "vendor"
    readme = (vendor / "README.md").read_text()
    for package in (p for p in vendor.iterdir() if p.is_dir()):
        assert list(package.glob("LICENSE*")), f"{package.name} has no LICENSE"
        assert package.name in readme
        # A minified file naming a source map must ship it, or collectstatic with a manifest fails.
        for asset in [*package.rglob("*.js"), *package.rglob("*.css")]:
            match = re.search(r"sourceMappingURL=(\S+?)\s*(?:\*/)?\s*$", asset.read_text(errors="ignore"))
            if match:
                assert (asset.parent / match.group(1)).exists(), asset


def test_the_theme_script_reads_no_inline_data():
    """The theme toggle works from static JS alone: stored choice, else the system preference."""
    script = (Path(settings.BASE_DIR) / "static" / "js" / "riskradar.js").read_text()
    assert "localStorage" in script
    assert "prefers-color-scheme: dark" in script
    assert "data-bs-theme" in script
