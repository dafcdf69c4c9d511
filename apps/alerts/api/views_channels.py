"""Notification channels in the API: a test message per channel (Admins only).

Targets (addresses, webhook URLs) are configuration only Admins see; the endpoint never echoes them.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPerm
from apps.alerts import notifications
from apps.alerts.api.serializers_channels import ChannelTestResultSerializer
from apps.alerts.models import NotificationChannel
from riskradar.api import MethodNotAllowedFirstMixin

MANAGE_CHANNELS = HasPerm("alerts.change_notificationchannel")


class ChannelTestView(MethodNotAllowedFirstMixin, APIView):
    permission_classes = [IsAuthenticated, MANAGE_CHANNELS]

    @extend_schema(
        operation_id="alerts_channels_test",
        summary="Send a test message over a notification channel",
        description=(
            "Sends a test message now (a webhook or mail server gets NOTIFY_TIMEOUT_SECONDS to answer) and records "
            "it in the channel's history. A disabled channel is tested too. The answer says whether the channel "
            "accepted the message; a channel that is down is status FAILED, not an HTTP error. Admins only."
        ),
        request=None,
        responses={
            200: ChannelTestResultSerializer,
            404: OpenApiResponse(description="No channel has this id."),
        },
        tags=["alerts"],
    )
    def post(self, request: Request, pk: int) -> Response:
        channel = get_object_or_404(NotificationChannel, pk=pk)
        result = notifications.channel_send_test(channel=channel, user=request.user)
        return Response(ChannelTestResultSerializer(result).data)
