from django.urls import path

from apps.risk.api import views
from riskradar.api import Router

router = Router()
router.register("risk/scenarios", views.StressScenarioViewSet, basename="api-stressscenario")

# No trailing slash, like every other path under /api/v1.
urlpatterns = [
    path("risk/calculate", views.CalculateView.as_view(), name="api-risk-calculate"),
    path("risk/live", views.LiveView.as_view(), name="api-risk-live"),
    path("risk/history", views.HistoryView.as_view(), name="api-risk-history"),
    path("risk/stats", views.StatsView.as_view(), name="api-risk-stats"),
    path("risk/stress", views.StressView.as_view(), name="api-risk-stress"),
    path("risk/ladder", views.LadderView.as_view(), name="api-risk-ladder"),
    path("risk/backtest", views.BacktestView.as_view(), name="api-risk-backtest"),
    path("risk/what-if", views.WhatIfView.as_view(), name="api-risk-what-if"),
    path("risk/<int:pk>", views.SnapshotView.as_view(), name="api-risk-detail"),
    path("explain/risk", views.ExplainView.as_view(), name="api-explain-risk"),
    path("config", views.ConfigView.as_view(), name="api-config"),
    *router.urls,
]
