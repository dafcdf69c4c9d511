"""Answers of the notification channel endpoints."""

from rest_framework import serializers

from apps.alerts.models import NotificationAttempt, NotificationChannel
from riskradar.api import UtcDateTimeField

TEST_STATUSES = [NotificationAttempt.Status.SENT, NotificationAttempt.Status.FAILED]


class ChannelTestResultSerializer(serializers.Serializer):
    """The outcome of a channel's test message (apps.alerts.notifications.ChannelTestResult)."""

    channel = serializers.IntegerField(source="channel.pk", help_text="The channel's id.")
    name = serializers.CharField(source="channel.name")
    kind = serializers.ChoiceField(source="channel.kind", choices=NotificationChannel.Kind.choices)
    sent = serializers.BooleanField(help_text="Whether the channel accepted the message.")
    status = serializers.ChoiceField(choices=[(s.value, s.label) for s in TEST_STATUSES])
    response = serializers.CharField(help_text="The channel's answer or the error (truncated).")
    at = UtcDateTimeField()
