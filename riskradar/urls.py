from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from apps.risk import dashboard
from riskradar.metrics import metrics_view

# Swagger UI loads its start-up script from a URL of its own (the split view), but it and ReDoc style
# themselves inline, and ReDoc runs its search in a worker made from a blob.
DOCS_CSP = csp_update({"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"], "img-src": ["data:"]})

admin.site.site_header = "RiskRadar administration"
admin.site.site_title = "RiskRadar admin"

urlpatterns = [
    path("", dashboard.dashboard_page, name="dashboard"),
    path("", dashboard.dashboard_page, name="home"),  # the older name, still used by links
    path("dashboard/kpis/", dashboard.dashboard_kpis, name="dashboard-kpis"),
    path("dashboard/risk-feed/", dashboard.dashboard_risk_feed, name="dashboard-risk-feed"),
    path("dashboard/market-feed/", dashboard.dashboard_market_feed, name="dashboard-market-feed"),
    path("dashboard/trend/", dashboard.dashboard_trend, name="dashboard-trend"),
    path("dashboard/exchanges/", dashboard.dashboard_exchanges, name="dashboard-exchanges"),
    path("accounts/", include("apps.accounts.urls")),
    path("portfolios/", include("apps.portfolios.urls")),
    path("market/", include("apps.market.urls")),
    path("imports/", include("apps.portfolios.import_urls")),
    path("risk/", include("apps.risk.urls")),
    path("alerts/", include("apps.alerts.urls")),
    path("audit/", include("apps.audit.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("riskradar.api_urls")),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", DOCS_CSP(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/redoc", DOCS_CSP(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
]
