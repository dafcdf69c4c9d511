"""The alerts API under /api/v1/ (no trailing slash, like every other path there).

POST /api/v1/trades/check (views_pretrade) is routed by apps.portfolios.api.urls, ahead of /trades/{id}.
"""

from django.urls import path

from apps.alerts.api import views_alerts, views_channels, views_limits, views_rules
from riskradar.api import Router

router = Router()
router.register("alerts/rules", views_rules.AlertRuleViewSet, basename="api-alertrule")
router.register("alerts/limit-increases", views_limits.LimitIncreaseViewSet, basename="api-limitincrease")
router.register("alerts", views_alerts.AlertViewSet, basename="api-alert")

urlpatterns = [
    path("alerts/channels/<int:pk>/test", views_channels.ChannelTestView.as_view(), name="api-alerts-channel-test"),
    *router.urls,
]
