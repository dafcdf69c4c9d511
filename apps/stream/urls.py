"""The stream API under /api/v1/stream/."""

from django.urls import path

from apps.stream.api import StreamEventsView

urlpatterns = [
    path("events", StreamEventsView.as_view(), name="api-stream-events"),
]
