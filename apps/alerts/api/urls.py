"""The alerts API under /api/v1/ (no trailing slash, like every other path there)."""

from django.urls import path

from apps.alerts.api import views_channels

urlpatterns = [
    path("alerts/channels/<int:pk>/test", views_channels.ChannelTestView.as_view(), name="api-alerts-channel-test"),
]
