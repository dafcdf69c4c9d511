from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

admin.site.site_header = "RiskRadar administration"
admin.site.site_title = "RiskRadar admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portfolios:list", permanent=False), name="home"),
    path("accounts/", include("apps.accounts.urls")),
    path("portfolios/", include("apps.portfolios.urls")),
    path("market/", include("apps.market.urls")),
    path("imports/", include("apps.portfolios.import_urls")),
    path("risk/", include("apps.risk.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("riskradar.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
