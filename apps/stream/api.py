"""Gap recovery: the stored events after a sequence number."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.stream.publish import current_seq
from apps.stream.selectors import stream_events_after, stream_oldest_seq

ERR_NO_ROLE = "Your account has no role yet; ask an administrator to give you one."


class HasRole(BasePermission):
    """Allow any signed-in user who has a role: every role may watch the stream."""

    message = ERR_NO_ROLE

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.role is not None)


class EventsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0, help_text="Return events with a greater seq.")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=500)


class StreamEventSerializer(serializers.Serializer):
    type = serializers.CharField()
    seq = serializers.IntegerField()
    data = serializers.JSONField()


class StreamEventsSerializer(serializers.Serializer):
    events = StreamEventSerializer(many=True)
    latest_seq = serializers.IntegerField(help_text="Seq of the latest published event.")
    oldest_seq = serializers.IntegerField(
        allow_null=True, help_text="Seq of the oldest event still kept; older ones cannot be recovered."
    )


class StreamEventsView(APIView):
    """The events published after `after`, oldest first, as the socket sent them; for recovering a gap."""

    permission_classes = [HasRole]

    @extend_schema(tags=["stream"], parameters=[EventsQuerySerializer], responses=StreamEventsSerializer)
    def get(self, request: Request) -> Response:
        query = EventsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        events = stream_events_after(**query.validated_data)
        body = {
            "events": [event.as_message() for event in events],
            "latest_seq": current_seq(),
            "oldest_seq": stream_oldest_seq(),
        }
        return Response(StreamEventsSerializer(body).data)
