from django.urls import path

from apps.stream import consumers

websocket_urlpatterns = [
    path("ws/risk-stream", consumers.RiskStreamConsumer.as_asgi()),
]
