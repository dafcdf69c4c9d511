"""Alerts in the API: the inbox (list and filters), an alert, acknowledge and resolve (one or many), and stats.

Every role reads alerts; acknowledging and resolving need alerts.acknowledge_alert and alerts.resolve_alert
(Analyst, Admin). The workflow itself is apps.alerts.services: a refused step answers 409 naming the field.
"""

from django.db.models import Case, IntegerField, Value, When
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import HasPerm
from apps.alerts import selectors, services
from apps.alerts.api.errors import BAD_REQUEST, CONFLICT, FORBIDDEN, NOT_FOUND, service_errors
from apps.alerts.api.filters import AlertFilter
from apps.alerts.api.serializers import (
    AlertBulkAcknowledgeResultSerializer,
    AlertBulkAcknowledgeSerializer,
    AlertResolveSerializer,
    AlertSerializer,
    AlertStatsSerializer,
    StatsQuerySerializer,
)
from apps.alerts.models import Alert, AlertSeverity
from riskradar.api import FILTER_AND_ORDER, MethodNotAllowedFirstMixin

ACKNOWLEDGE = HasPerm(services.PERM_ACKNOWLEDGE)
RESOLVE = HasPerm(services.PERM_RESOLVE)
ERR_NO_ALERT = "No alert has id {id}."
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The alert's id.")
# Severities in their order (INFO lowest), for ?ordering=-severity_rank (most severe first).
SEVERITY_RANK = Case(
    *[When(severity=value, then=Value(rank)) for rank, value in enumerate(AlertSeverity.values)],
    output_field=IntegerField(),
)
ACKNOWLEDGED, SKIPPED, NOT_FOUND_RESULT = "acknowledged", "skipped", "not_found"


@extend_schema_view(
    list=extend_schema(
        summary="List alerts (the inbox)",
        description="Most recently seen first. Filters combine; since is on last_seen. Every role may read.",
    ),
    retrieve=extend_schema(summary="An alert with its figures, rule, subject and workflow", parameters=[ID_PARAMETER]),
)
@extend_schema(tags=["alerts"])
class AlertViewSet(
    MethodNotAllowedFirstMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Alerts raised by the rules; they are worked (acknowledged, resolved), never created or edited here."""

    queryset = Alert.objects.all()
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    filter_backends = FILTER_AND_ORDER
    lookup_value_regex = r"[0-9]+"
    ordering_fields = ["last_seen", "first_seen", "count", "id", "status", "severity_rank"]
    ordering = ["-last_seen", "-id"]

    def get_queryset(self):
        return selectors.alert_list().annotate(severity_rank=SEVERITY_RANK)

    def _answer(self, alert: Alert) -> Response:
        return Response(AlertSerializer(selectors.alert_list().get(pk=alert.pk)).data)

    @extend_schema(
        operation_id="alerts_acknowledge",
        summary="Acknowledge an alert (Analyst, Admin)",
        description="Only an OPEN alert can be acknowledged; otherwise 409 naming status.",
        parameters=[ID_PARAMETER],
        request=None,
        responses={200: AlertSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, ACKNOWLEDGE])
    def acknowledge(self, request: Request, pk: int) -> Response:
        alert = self.get_object()
        with service_errors():
            services.alert_acknowledge(alert=alert, user=request.user)
        return self._answer(alert)

    @extend_schema(
        operation_id="alerts_resolve",
        summary="Resolve an alert with a disposition and a note (Analyst, Admin)",
        description=(
            "An OPEN or ACKNOWLEDGED alert can be resolved; RESOLVED is final (409 naming status). The disposition "
            "(TRUE_POSITIVE or FALSE_POSITIVE) counts towards the rule's precision."
        ),
        parameters=[ID_PARAMETER],
        request=AlertResolveSerializer,
        responses={200: AlertSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, RESOLVE])
    def resolve(self, request: Request, pk: int) -> Response:
        alert = self.get_object()
        data = AlertResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors(rename={"resolution_note": "note"}):
            services.alert_resolve(
                alert=alert,
                user=request.user,
                disposition=data.validated_data["disposition"],
                note=data.validated_data["note"],
            )
        return self._answer(alert)

    @extend_schema(
        operation_id="alerts_acknowledge_many",
        summary="Acknowledge several alerts (Analyst, Admin)",
        description=(
            "Acknowledges each OPEN alert among the ids, each in its own transaction. The answer has one entry per "
            "id, in the order given (repeats once): acknowledged; skipped (not OPEN: acknowledged or resolved "
            "already, with the reason); or not_found. Always 200 once the request is valid."
        ),
        request=AlertBulkAcknowledgeSerializer,
        responses={200: AlertBulkAcknowledgeResultSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="acknowledge",
        url_name="acknowledge-many",
        permission_classes=[IsAuthenticated, ACKNOWLEDGE],
    )
    def acknowledge_many(self, request: Request) -> Response:
        data = AlertBulkAcknowledgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(dict.fromkeys(data.validated_data["ids"]))
        with service_errors():
            done = {alert.pk for alert in services.alert_acknowledge_many(alert_ids=ids, user=request.user)}
        statuses = dict(Alert.objects.filter(pk__in=ids).values_list("pk", "status"))
        results = []
        for pk in ids:
            if pk in done:
                results.append({"id": pk, "result": ACKNOWLEDGED, "status": statuses[pk], "message": ""})
            elif pk not in statuses:
                results.append(
                    {"id": pk, "result": NOT_FOUND_RESULT, "status": None, "message": ERR_NO_ALERT.format(id=pk)}
                )
            else:
                message = services.ERR_TRANSITION.format(id=pk, status=statuses[pk], action="acknowledged")
                results.append({"id": pk, "result": SKIPPED, "status": statuses[pk], "message": message})
        answer = {"acknowledged": [pk for pk in ids if pk in done], "results": results}
        return Response(AlertBulkAcknowledgeResultSerializer(answer).data)

    @extend_schema(
        operation_id="alerts_stats",
        summary="Alert counts by status and severity, and alerts raised per day by severity",
        description=(
            "by_status counts every alert; open_by_severity the OPEN and ACKNOWLEDGED ones; per_day the alerts "
            "first raised on each of the last `days` UTC days (today included), every day listed."
        ),
        parameters=[StatsQuerySerializer],
        responses={200: AlertStatsSerializer, 400: BAD_REQUEST},
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def stats(self, request: Request) -> Response:
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        stats = selectors.alert_stats(days=query.validated_data["days"])
        answer = {
            "days": stats.days,
            "by_status": stats.by_status,
            "open_by_severity": stats.open_by_severity,
            "per_day": stats.per_day,
        }
        return Response(AlertStatsSerializer(answer).data)
