"""Everything under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("auth/", include("apps.accounts.api.urls")),
    path("", include("apps.market.api.urls")),
    path("", include("apps.portfolios.api.urls")),
    path("imports/", include("apps.portfolios.api.import_urls")),
    path("", include("apps.risk.api.urls")),
    path("", include("apps.alerts.api.urls")),
    path("stream/", include("apps.stream.urls")),
    path("audit/", include("apps.audit.api_urls")),
    path("health", include("riskradar.health")),
]
