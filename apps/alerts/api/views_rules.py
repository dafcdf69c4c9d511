"""Alert rules in the API: every role reads them (with each rule's precision), Admins create, change and delete
them; dry runs replay a saved rule, or a rule not saved yet, over stored history and write nothing."""

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import HasPerm
from apps.alerts import dry_run, selectors, services
from apps.alerts.api.errors import BAD_REQUEST, CONFLICT, FORBIDDEN, NOT_FOUND, service_errors
from apps.alerts.api.filters import AlertRuleFilter
from apps.alerts.api.serializers import (
    AlertRuleSerializer,
    DryRunRangeSerializer,
    DryRunResultSerializer,
    DryRunRuleSerializer,
)
from apps.alerts.models import AlertRule
from riskradar.api import MethodNotAllowedFirstMixin

READ_RULES = HasPerm("alerts.view_alertrule")
DRY_RUN_DEFAULT = dt.timedelta(days=30)
DRY_RUN_MAX = dt.timedelta(days=366)
ERR_DRY_RUN_SPAN = f"A dry run covers at most {DRY_RUN_MAX.days} days; narrow since and until."
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The rule's id.")
DRY_RUN_DESCRIPTION = (
    "Replays the rule over stored history (since..until, default the last 30 days, at most 366) with the same "
    "conditions, deduplication and cooldown as live evaluation, and answers how many alerts it would have "
    "raised and when: per UTC day and each alert. Each alert is taken as resolved when its condition cleared. "
    "Anomaly rules cannot be replayed (their scores are not stored). Writes nothing; every role may ask."
)


def _dry_run_answer(rule: AlertRule, data: dict) -> dict:
    until = data.get("until") or timezone.now()
    since = data.get("since") or until - DRY_RUN_DEFAULT
    if until - since > DRY_RUN_MAX:
        raise serializers.ValidationError({"since": [ERR_DRY_RUN_SPAN]})
    with service_errors():
        result = dry_run.rule_dry_run(rule=rule, since=since, until=until)
    return {
        "rule": rule.pk,
        "kind": result.kind,
        "since": result.since,
        "until": result.until,
        "count": result.count,
        "evaluations": result.evaluations,
        "suppressed": result.suppressed,
        "per_day": [{"date": day, "count": n} for day, n in result.per_day().items()],
        "alerts": result.alerts,
    }


@extend_schema_view(
    list=extend_schema(summary="List alert rules, each with its precision"),
    retrieve=extend_schema(summary="An alert rule with its precision", parameters=[ID_PARAMETER]),
    create=extend_schema(
        summary="Create an alert rule (Admin)",
        description="Parameters are checked against the kind (docs/alerts.md); errors name each parameter.",
        responses={201: AlertRuleSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
    ),
    update=extend_schema(
        summary="Replace an alert rule (Admin)",
        parameters=[ID_PARAMETER],
        responses={200: AlertRuleSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
    partial_update=extend_schema(
        summary="Change an alert rule (Admin)",
        description="Fields left out keep their value; the next evaluation uses the change.",
        parameters=[ID_PARAMETER],
        responses={200: AlertRuleSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND},
    ),
    destroy=extend_schema(
        summary="Delete an alert rule (Admin)",
        description="A rule with alerts or limit increases keeps its history: 409; disable it instead.",
        parameters=[ID_PARAMETER],
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
    ),
)
@extend_schema(tags=["alerts"])
class AlertRuleViewSet(MethodNotAllowedFirstMixin, viewsets.ModelViewSet):
    """What the desk watches; written through apps.alerts.services (validated per kind, audited)."""

    queryset = AlertRule.objects.select_related("scope_portfolio", "scope_instrument", "created_by", "updated_by")
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    lookup_value_regex = r"[0-9]+"
    search_fields = ["name", "description"]
    ordering_fields = ["name", "kind", "severity", "enabled", "updated_at", "id"]
    ordering = ["kind", "name"]

    def get_queryset(self):
        return super().get_queryset().prefetch_related("channels")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "precision": getattr(self, "_precision", None)}

    def list(self, request: Request, *args, **kwargs) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rules = list(page if page is not None else queryset)
        self._precision = selectors.rule_precision(rule_ids=[rule.pk for rule in rules])
        data = self.get_serializer(rules, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def get_success_headers(self, data) -> dict:
        return {"Location": self.request.build_absolute_uri(reverse("api-alertrule-detail", args=[data["id"]]))}

    def perform_create(self, serializer):
        with service_errors():
            serializer.instance = services.alert_rule_create(
                data=dict(serializer.validated_data), user=self.request.user
            )

    def perform_update(self, serializer):
        with service_errors():
            serializer.instance = services.alert_rule_update(
                rule=serializer.instance, data=dict(serializer.validated_data), user=self.request.user
            )

    def perform_destroy(self, instance):
        with service_errors():
            services.alert_rule_delete(rule=instance, user=self.request.user)

    @extend_schema(
        operation_id="alerts_rules_dry_run",
        summary="Dry-run a saved rule over stored history",
        description=DRY_RUN_DESCRIPTION + " The rule need not be enabled.",
        parameters=[ID_PARAMETER],
        request=DryRunRangeSerializer,
        responses={200: DryRunResultSerializer, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], url_path="dry-run", permission_classes=[IsAuthenticated, READ_RULES])
    def dry_run(self, request: Request, pk: int) -> Response:
        data = DryRunRangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = _dry_run_answer(self.get_object(), data.validated_data)
        return Response(DryRunResultSerializer(answer).data)

    @extend_schema(
        operation_id="alerts_rules_dry_run_unsaved",
        summary="Dry-run a rule that is not saved",
        description=DRY_RUN_DESCRIPTION + " The body is the rule (kind, scope, parameters, cooldown) and the range.",
        request=DryRunRuleSerializer,
        responses={200: DryRunResultSerializer, 400: BAD_REQUEST},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="dry-run",
        url_name="dry-run-unsaved",
        permission_classes=[IsAuthenticated, READ_RULES],
    )
    def dry_run_unsaved(self, request: Request) -> Response:
        data = DryRunRuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        span = {name: fields.pop(name) for name in ("since", "until") if name in fields}
        rule = AlertRule(**fields)
        return Response(DryRunResultSerializer(_dry_run_answer(rule, span)).data)
