"""Temporary limit increases in the API: every role reads them; an Analyst (or Admin) requests one; an Admin who
did not request it approves or refuses it (four eyes, enforced by apps.alerts.services); its requester or an
approver cancels it."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import HasPerm
from apps.alerts import services
from apps.alerts.api.errors import BAD_REQUEST, CONFLICT, FORBIDDEN, NOT_FOUND, service_errors
from apps.alerts.api.filters import LimitIncreaseFilter
from apps.alerts.api.serializers import DecisionNoteSerializer, LimitIncreaseSerializer, RefusalSerializer
from apps.alerts.models import LimitIncrease
from riskradar.api import FILTER_AND_ORDER, MethodNotAllowedFirstMixin

APPROVE = HasPerm(services.PERM_APPROVE_INCREASE)
READ_INCREASES = HasPerm("alerts.view_limitincrease")
# The service names the refusal's note after the model field.
NOTE_NAMES = {"decision_note": "note"}
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The increase's id.")
STEP_RESPONSES = {200: LimitIncreaseSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT}


@extend_schema_view(
    list=extend_schema(summary="List limit increases, newest request first"),
    retrieve=extend_schema(summary="A limit increase", parameters=[ID_PARAMETER]),
    create=extend_schema(
        summary="Request a temporary limit increase (Analyst, Admin)",
        description=(
            "For a limit rule (risk limit, client exposure, symbol concentration): new_soft and/or new_hard above "
            "the current levels, soft below hard, a reason, and expires_at at most 30 days ahead. portfolio left "
            "out: every portfolio the rule covers. It applies once another person approves it."
        ),
        responses={201: LimitIncreaseSerializer, 400: BAD_REQUEST, 403: FORBIDDEN},
    ),
)
@extend_schema(tags=["alerts"])
class LimitIncreaseViewSet(
    MethodNotAllowedFirstMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The history of temporary limits: never edited or deleted, moved on by approve, refuse and cancel."""

    queryset = LimitIncrease.objects.select_related("rule", "portfolio", "requested_by", "decided_by", "cancelled_by")
    serializer_class = LimitIncreaseSerializer
    filterset_class = LimitIncreaseFilter
    filter_backends = FILTER_AND_ORDER
    lookup_value_regex = r"[0-9]+"
    ordering_fields = ["requested_at", "expires_at", "decided_at", "status", "id"]
    ordering = ["-requested_at", "-id"]

    def get_success_headers(self, data) -> dict:
        return {"Location": self.request.build_absolute_uri(reverse("api-limitincrease-detail", args=[data["id"]]))}

    def perform_create(self, serializer):
        fields = serializer.validated_data
        with service_errors():
            increase = services.limit_increase_request(
                rule=fields["rule"],
                user=self.request.user,
                reason=fields["reason"],
                expires_at=fields["expires_at"],
                new_soft=fields.get("new_soft"),
                new_hard=fields.get("new_hard"),
                portfolio=fields.get("portfolio"),
            )
        serializer.instance = self.get_queryset().get(pk=increase.pk)

    def _answer(self, increase: LimitIncrease) -> Response:
        return Response(LimitIncreaseSerializer(self.get_queryset().get(pk=increase.pk)).data)

    @extend_schema(
        operation_id="alerts_limit_increases_approve",
        summary="Approve a requested increase (Admin, not its requester)",
        description="Four eyes: the requester cannot approve (409 naming decided_by). An expired request cannot be.",
        parameters=[ID_PARAMETER],
        request=DecisionNoteSerializer,
        responses=STEP_RESPONSES,
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, APPROVE])
    def approve(self, request: Request, pk: int) -> Response:
        increase = self.get_object()
        data = DecisionNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors(rename=NOTE_NAMES):
            services.limit_increase_approve(increase=increase, user=request.user, note=data.validated_data["note"])
        return self._answer(increase)

    @extend_schema(
        operation_id="alerts_limit_increases_refuse",
        summary="Refuse a requested increase with a reason (Admin, not its requester)",
        description="Four eyes: the requester cannot refuse it (409 naming decided_by); they cancel it instead.",
        parameters=[ID_PARAMETER],
        request=RefusalSerializer,
        responses=STEP_RESPONSES,
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, APPROVE])
    def refuse(self, request: Request, pk: int) -> Response:
        increase = self.get_object()
        data = RefusalSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors(rename=NOTE_NAMES):
            services.limit_increase_refuse(increase=increase, user=request.user, note=data.validated_data["note"])
        return self._answer(increase)

    @extend_schema(
        operation_id="alerts_limit_increases_cancel",
        summary="Withdraw a requested or approved increase before it expires (its requester, or an Admin)",
        parameters=[ID_PARAMETER],
        request=DecisionNoteSerializer,
        responses=STEP_RESPONSES,
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, READ_INCREASES])
    def cancel(self, request: Request, pk: int) -> Response:
        increase = self.get_object()
        data = DecisionNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors(rename=NOTE_NAMES):
            services.limit_increase_cancel(increase=increase, user=request.user, note=data.validated_data["note"])
        return self._answer(increase)
