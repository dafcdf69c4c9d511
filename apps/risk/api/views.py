"""The risk API: calculations on demand, snapshots and signals, stress, ladders, backtests, what-if, explanations,
config.

Every view parses its input with a serializer, calls one service or selector of apps.risk, and
serializes the answer; the services raise Django's ValidationError for bad input, which the shared
exception handler answers with a 400 naming the field.
"""

import dataclasses
import math
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPerm
from apps.risk import explain, selectors, services
from apps.risk.api.serializers import (
    BacktestRequestSerializer,
    BacktestResponseSerializer,
    CalculateRequestSerializer,
    CalculateResponseSerializer,
    ExplainRequestSerializer,
    ExplanationSerializer,
    HistoryQuerySerializer,
    LadderQuerySerializer,
    LadderResponseSerializer,
    LiveSerializer,
    RiskConfigSerializer,
    RiskStatsSerializer,
    SnapshotDetailSerializer,
    SnapshotSerializer,
    StressRequestSerializer,
    StressResponseSerializer,
    StressScenarioSerializer,
    SymbolSignalSerializer,
    WhatIfRequestSerializer,
    WhatIfResponseSerializer,
    finite_or_none,
)
from apps.risk.engine.types import StressShock
from apps.risk.ladder import risk_ladder
from apps.risk.models import RiskConfig, RiskSnapshot, StressScenario
from riskradar.api import MethodNotAllowedFirstMixin, validation_error_detail

READ_RISK = HasPerm("risk.view_risksnapshot")
# The services name their arguments; the API calls some of them differently.
API_FIELD_NAMES = {
    "portfolio": "portfolio_id",
    "confidence": "confidence_level",
    "horizon_days": "horizon",
    "instrument": "symbol",
}
BAD_REQUEST = OpenApiResponse(description='Field errors naming each field, e.g. {"horizon": ["..."]}.')
NO_SNAPSHOT = "{code} has no risk snapshot yet."


@contextmanager
def api_field_names():
    """Re-raise a service's ValidationError as a 400 naming the fields as the API calls them."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError(validation_error_detail(exc, rename=API_FIELD_NAMES)) from exc


class RiskApiView(MethodNotAllowedFirstMixin, APIView):
    """A risk endpoint every role may use: reading or computing risk writes nothing."""

    permission_classes = [IsAuthenticated, READ_RISK]


def _figure(result, *, method: str, confidence: float | None, horizon_days: int | None):
    """Return the VarFigure of a RiskResult for a method (and level and horizon when given), else None."""
    for figure in result.var:
        if figure.method != method:
            continue
        if confidence is not None and not math.isclose(figure.confidence, confidence, abs_tol=1e-9):
            continue
        if horizon_days is not None and figure.horizon_days != horizon_days:
            continue
        return figure
    return None


def calculation_answer(*, portfolio, calculation, data: dict) -> dict:
    """Return the answer of POST /risk/calculate from a calculation, with only the metrics asked for."""
    result = calculation.result
    method = data["method"]
    figure = _figure(
        result, method=method, confidence=data.get("confidence_level"), horizon_days=data.get("horizon")
    ) or _figure(result, method=method, confidence=None, horizon_days=None)
    stats = result.stats
    values = {
        "var": figure.var if figure else None,
        "cvar": figure.es if figure else None,
        "es": figure.es if figure else None,
        "volatility": stats.annual_volatility if stats else None,
        "ewma_volatility": stats.ewma_volatility if stats else None,
        "annual_return": stats.annual_return if stats else None,
        "sharpe": stats.sharpe if stats else None,
        "sortino": stats.sortino if stats else None,
        "max_drawdown": stats.max_drawdown if stats else None,
        "current_drawdown": stats.current_drawdown if stats else None,
        "beta": stats.beta if stats else None,
        "correlation": stats.correlation if stats else None,
        "score": result.score.score,
    }
    wanted = data.get("metrics") or list(values)
    return {
        "portfolio_id": portfolio.pk,
        "portfolio_code": portfolio.code,
        "as_of": calculation.inputs.as_of,
        "base_currency": portfolio.base_currency,
        "method": method,
        "confidence_level": figure.confidence if figure else data.get("confidence_level"),
        "horizon_days": figure.horizon_days if figure else data.get("horizon"),
        "market_value": result.market_value,
        "gross_exposure": result.gross_exposure,
        "severity": result.score.severity,
        "metrics": {name: finite_or_none(values[name]) for name in wanted},
        "warnings": [*calculation.inputs.warnings, *result.warnings],
        "duration_ms": round(calculation.duration_ms, 3),
    }


class CalculateView(RiskApiView):
    @extend_schema(
        operation_id="risk_calculate",
        summary="Calculate a portfolio's risk now",
        description=(
            "Computes the figures from the current positions and prices without storing a snapshot. Every role "
            "may ask. confidence_level and horizon default to the configured first level and horizon."
        ),
        request=CalculateRequestSerializer,
        responses={200: CalculateResponseSerializer, 400: BAD_REQUEST},
        tags=["risk"],
    )
    def post(self, request: Request) -> Response:
        data = CalculateRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        portfolio = fields["portfolio_id"]
        with api_field_names():
            calculation = services.risk_calculation(
                portfolio=portfolio,
                confidence=fields.get("confidence_level"),
                horizon_days=fields.get("horizon"),
                method=fields["method"],
                only_requested=True,
            )
        answer = calculation_answer(portfolio=portfolio, calculation=calculation, data=fields)
        body = CalculateResponseSerializer(answer).data
        body["metrics"] = {name: body["metrics"][name] for name in answer["metrics"]}
        return Response(body)


class LiveView(RiskApiView):
    @extend_schema(
        operation_id="risk_live",
        summary="The latest snapshot of every portfolio and the latest signal of every instrument",
        responses=LiveSerializer,
        tags=["risk"],
    )
    def get(self, request: Request) -> Response:
        live = {
            "portfolios": selectors.snapshot_latest_per_portfolio(),
            "symbols": selectors.signals_latest_per_symbol(),
        }
        return Response(LiveSerializer(live).data)


class SnapshotView(MethodNotAllowedFirstMixin, generics.RetrieveAPIView):
    queryset = RiskSnapshot.objects.select_related("portfolio")
    serializer_class = SnapshotDetailSerializer
    permission_classes = [IsAuthenticated, READ_RISK]

    @extend_schema(operation_id="risk_retrieve", summary="A risk snapshot with every figure", tags=["risk"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class HistoryView(MethodNotAllowedFirstMixin, generics.GenericAPIView):
    permission_classes = [IsAuthenticated, READ_RISK]
    serializer_class = SnapshotSerializer
    filter_backends = []

    @extend_schema(
        operation_id="risk_history",
        summary="Risk snapshots over time, or an instrument's signals with ?symbol=",
        description="Newest first, paginated. Times in ISO 8601 with an offset.",
        parameters=[HistoryQuerySerializer],
        responses={
            200: PolymorphicProxySerializer(
                component_name="RiskHistoryEntry",
                serializers=[SnapshotSerializer, SymbolSignalSerializer],
                resource_type_field_name=None,
                many=True,
            ),
            400: BAD_REQUEST,
        },
        tags=["risk"],
    )
    def get(self, request: Request) -> Response:
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if "symbol" in params:
            rows = selectors.signal_history(
                instrument=params["symbol"],
                severity=params.get("severity"),
                since=params.get("since"),
                until=params.get("until"),
            )
            serializer_class = SymbolSignalSerializer
        else:
            rows = selectors.snapshot_history(
                portfolio=params.get("portfolio"),
                severity=params.get("severity"),
                since=params.get("since"),
                until=params.get("until"),
            )
            serializer_class = SnapshotSerializer
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(serializer_class(page, many=True).data)


class StatsView(RiskApiView):
    @extend_schema(
        operation_id="risk_stats",
        summary="Counts and totals across the latest snapshots",
        responses=RiskStatsSerializer,
        tags=["risk"],
    )
    def get(self, request: Request) -> Response:
        return Response(RiskStatsSerializer(selectors.risk_stats()).data)


class StressView(RiskApiView):
    @extend_schema(
        operation_id="risk_stress",
        summary="Run stress scenarios on a portfolio",
        description="Stored scenarios by id, and/or shocks given here (run once, not stored). Stores nothing.",
        request=StressRequestSerializer,
        responses={200: StressResponseSerializer, 400: BAD_REQUEST},
        tags=["risk"],
    )
    def post(self, request: Request) -> Response:
        data = StressRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        portfolio = fields["portfolio_id"]
        with api_field_names():
            results = services.risk_stress(
                portfolio=portfolio,
                scenario_ids=fields["scenarios"],
                extra_shocks=[StressShock(**shock) for shock in fields["shocks"]],
            )
        worst = min(results, key=lambda r: r.pnl, default=None)
        answer = {
            "portfolio_id": portfolio.pk,
            "portfolio_code": portfolio.code,
            "base_currency": portfolio.base_currency,
            "worst": worst.name if worst is not None and worst.pnl < 0 else None,
            "results": results,
        }
        return Response(StressResponseSerializer(answer).data)


class LadderView(RiskApiView):
    @extend_schema(
        operation_id="risk_ladder",
        summary="Spot x volatility P&L ladder of a portfolio's option book",
        description=(
            "Full revaluation of every option, future and position on one underlying, live, for spot moves of "
            "-20%..+20% (columns) against implied-vol moves of -50%..+100% (rows), without time decay. "
            "underlying defaults to the one with the largest absolute gamma. A portfolio without options or "
            "futures answers 200 with underlying null, an empty grid and a message. Stores nothing."
        ),
        parameters=[LadderQuerySerializer],
        responses={200: LadderResponseSerializer, 400: BAD_REQUEST},
        tags=["risk"],
    )
    def get(self, request: Request) -> Response:
        query = LadderQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        with api_field_names():
            ladder = risk_ladder(portfolio=params["portfolio_id"], underlying=params.get("underlying") or None)
        return Response(LadderResponseSerializer(dataclasses.asdict(ladder)).data)


class BacktestView(RiskApiView):
    @extend_schema(
        operation_id="risk_backtest",
        summary="Backtest a portfolio's VaR on its past P&L",
        description=(
            "Each of the last `observations` days is forecast from the `window` days before it only; the answer "
            "has the exception count, Kupiec, Christoffersen and conditional coverage tests, the Basel traffic "
            "light, and the series for a chart."
        ),
        request=BacktestRequestSerializer,
        responses={200: BacktestResponseSerializer, 400: BAD_REQUEST},
        tags=["risk"],
    )
    def post(self, request: Request) -> Response:
        data = BacktestRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        portfolio = fields["portfolio_id"]
        with api_field_names():
            result = services.risk_backtest(
                portfolio=portfolio,
                window=fields["window"],
                observations=fields["observations"],
                confidence=fields["confidence_level"],
                method=fields["method"],
            )
        return Response(BacktestResponseSerializer(backtest_answer(portfolio=portfolio, result=result)).data)


def backtest_answer(*, portfolio, result) -> dict:
    """Return a BacktestResult as the API and the backtest panel show it."""
    return {
        "portfolio_id": portfolio.pk,
        "portfolio_code": portfolio.code,
        "base_currency": portfolio.base_currency,
        "method": result.method,
        "confidence_level": result.confidence,
        "window": result.window,
        "observations": result.observations,
        "exceptions": result.exceptions,
        "exception_rate": result.exception_rate,
        "expected_exceptions": result.observations * (1 - result.confidence),
        "kupiec": _statistic(result.kupiec),
        "christoffersen": _statistic(result.christoffersen),
        "conditional_coverage": _statistic(result.conditional_coverage),
        "basel_zone": result.basel_zone,
        "dates": [str(d)[:10] for d in getattr(result, "dates", [])],
        "pnl": [finite_or_none(x) for x in result.pnl],
        "var": [finite_or_none(x) for x in result.var],
        "es": [finite_or_none(x) for x in result.es],
        "hits": [bool(x) for x in result.hits],
    }


def _statistic(pair) -> dict:
    return {"statistic": finite_or_none(pair[0]), "p_value": finite_or_none(pair[1])}


class WhatIfView(RiskApiView):
    @extend_schema(
        operation_id="risk_what_if",
        summary="Risk before and after a hypothetical trade",
        description="Books nothing: the trade is added to the holdings for this calculation only.",
        request=WhatIfRequestSerializer,
        responses={200: WhatIfResponseSerializer, 400: BAD_REQUEST},
        tags=["risk"],
    )
    def post(self, request: Request) -> Response:
        data = WhatIfRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        portfolio = fields["portfolio_id"]
        with api_field_names():
            answer = services.risk_what_if(
                portfolio=portfolio,
                symbol=fields["symbol"],
                side=fields["side"],
                quantity=fields["quantity"],
                price=fields["price"],
            )
        answer = {**answer, "portfolio_id": portfolio.pk, "portfolio_code": portfolio.code}
        return Response(WhatIfResponseSerializer(answer).data)


class ExplainView(RiskApiView):
    @extend_schema(
        operation_id="explain_risk",
        summary="Why a snapshot's risk is what it is",
        description=(
            "Explains a snapshot (risk_id) or a portfolio's latest one (portfolio_id): top contributors, score "
            "features over their thresholds, the worst stress scenario and what changed since the previous "
            "snapshot. source says whether the text came from the template or a language model."
        ),
        request=ExplainRequestSerializer,
        responses={200: ExplanationSerializer, 400: BAD_REQUEST, 404: OpenApiResponse(description="No snapshot.")},
        tags=["risk"],
    )
    def post(self, request: Request) -> Response:
        data = ExplainRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        snapshot = data.validated_data.get("risk_id")
        if snapshot is None:
            portfolio = data.validated_data["portfolio_id"]
            snapshot = selectors.snapshot_history(portfolio=portfolio).first()
            if snapshot is None:
                raise Http404(NO_SNAPSHOT.format(code=portfolio.code))
        explanation = explain.explain_snapshot(snapshot=snapshot, previous=selectors.snapshot_previous(snapshot))
        return Response(ExplanationSerializer(explanation_answer(snapshot=snapshot, explanation=explanation)).data)


def explanation_answer(*, snapshot: RiskSnapshot, explanation) -> dict:
    return {
        "risk_id": snapshot.pk,
        "portfolio_id": snapshot.portfolio_id,
        "portfolio_code": snapshot.portfolio.code,
        "as_of": snapshot.as_of,
        "headline": explanation.headline,
        "paragraphs": list(explanation.paragraphs),
        "bullets": list(explanation.bullets),
        "text": explanation.text,
        "source": explanation.source,
        "note": explanation.note,
        "top_contributors": list(explanation.top_contributors),
        "features_over_threshold": list(explanation.features_over_threshold),
        "worst_stress": explanation.worst_stress,
        "changes": list(explanation.changes),
    }


class ConfigView(MethodNotAllowedFirstMixin, generics.GenericAPIView):
    """The one row of risk settings: every role reads it, Admins change it (risk.change_riskconfig)."""

    queryset = RiskConfig.objects.all()
    serializer_class = RiskConfigSerializer

    def get_object(self) -> RiskConfig:
        # The one row, whatever the URL; DRF's OPTIONS answer also asks for it to describe PUT.
        return RiskConfig.get_solo()

    @extend_schema(operation_id="config_retrieve", summary="The risk settings", tags=["config"])
    def get(self, request: Request) -> Response:
        return Response(RiskConfigSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="config_update",
        summary="Change the risk settings (Admin)",
        description=(
            "Fields left out keep their value. The whole row is validated (e.g. 0 < low < medium < high <= 1) "
            "and used by the next calculation, without a restart."
        ),
        request=RiskConfigSerializer,
        responses={200: RiskConfigSerializer, 400: BAD_REQUEST},
    )
    def put(self, request: Request) -> Response:
        data = RiskConfigSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        config = services.risk_config_update(data=dict(data.validated_data), user=request.user)
        return Response(RiskConfigSerializer(config).data)


@extend_schema_view(
    list=extend_schema(summary="List stress scenarios"),
    retrieve=extend_schema(summary="A stress scenario"),
    create=extend_schema(
        summary="Create a stress scenario (Analyst, Admin)", responses={201: StressScenarioSerializer, 400: BAD_REQUEST}
    ),
    update=extend_schema(summary="Replace a stress scenario (Analyst, Admin)"),
    partial_update=extend_schema(summary="Change a stress scenario (Analyst, Admin)"),
    destroy=extend_schema(summary="Delete a stress scenario (Admin)"),
)
@extend_schema(tags=["risk"])
class StressScenarioViewSet(MethodNotAllowedFirstMixin, viewsets.ModelViewSet):
    """User-defined hypothetical scenarios, run next to the built-in ones at every calculation."""

    queryset = StressScenario.objects.select_related("created_by")
    serializer_class = StressScenarioSerializer
    filterset_fields = ["is_active"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]

    def perform_create(self, serializer):
        serializer.instance = services.stress_scenario_create(
            data=dict(serializer.validated_data), user=self.request.user
        )

    def perform_update(self, serializer):
        serializer.instance = services.stress_scenario_update(
            scenario=serializer.instance, data=dict(serializer.validated_data), user=self.request.user
        )
