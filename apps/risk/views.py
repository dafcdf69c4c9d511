"""The risk pages: an overview of every portfolio, one portfolio's risk, and the stress scenarios.

Each view parses the request, calls a selector or service of apps.risk, and renders a page, or the
partial alone when htmx asks for it. Slow parts (backtest, explanation, spot x vol ladder) are partials
the page loads after it is shown.
"""

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from apps.portfolios.models import Portfolio
from apps.portfolios.selectors import portfolio_list
from apps.risk import explain, selectors, services
from apps.risk.api.views import backtest_answer
from apps.risk.forms import BacktestForm, StressScenarioForm, WhatIfForm
from apps.risk.ladder import Ladder, risk_ladder
from apps.risk.models import RiskConfig, RiskSnapshot, SnapshotKind, StressScenario
from riskradar.pages import partial_wanted

READ = "risk.view_risksnapshot"
CALCULATE = "risk.add_risksnapshot"
HISTORY_RANGES = {"24h": dt.timedelta(hours=24), "30d": dt.timedelta(days=30)}
DEFAULT_HISTORY_RANGE = "24h"
MAX_CHART_POINTS = 500
TOP_CONTRIBUTORS = 10
METHOD_LABELS = {
    "historical": "Historical",
    "parametric": "Parametric (normal)",
    "cornish_fisher": "Cornish-Fisher",
    "monte_carlo": "Monte Carlo",
    "sqrt_time": "Historical, √t scaled",
}
OVERVIEW_SORTS = {
    "code": lambda r: r.portfolio.code,
    "mv": lambda r: r.snapshot.market_value if r.snapshot else None,
    "var": lambda r: r.snapshot.var if r.snapshot else None,
    "es": lambda r: r.snapshot.es if r.snapshot else None,
    "var_pct": lambda r: r.var_fraction,
    "score": lambda r: r.snapshot.risk_score if r.snapshot else None,
    "computed": lambda r: r.snapshot.computed_at if r.snapshot else None,
}
DEFAULT_SORT = "-score"
HEAT_LEVELS = 5  # shades of green (gain) and red (loss) in the ladder, by |P&L| over the grid's largest


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# ------------------------------------------------------------------------------ overview
@dataclass
class OverviewRow:
    portfolio: Portfolio
    snapshot: RiskSnapshot | None

    @property
    def var_fraction(self) -> Decimal | None:
        # Over gross exposure, as every relative figure of the engine (docs/risk.md).
        if self.snapshot is None or not self.snapshot.gross_exposure:
            return None
        return self.snapshot.var / self.snapshot.gross_exposure


def _overview_rows(sort: str) -> list[OverviewRow]:
    latest = {s.portfolio_id: s for s in selectors.snapshot_latest_per_portfolio()}
    rows = [OverviewRow(p, latest.get(p.pk)) for p in portfolio_list().filter(is_active=True).order_by("code")]
    key = OVERVIEW_SORTS[sort.removeprefix("-")]
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    # Portfolios without a figure go last whichever the direction.
    return sorted(present, key=key, reverse=sort.startswith("-")) + missing


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def risk_overview_page(request: HttpRequest) -> HttpResponse:
    """List every active portfolio with its latest risk, sortable; the table alone for htmx."""
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort.removeprefix("-") not in OVERVIEW_SORTS:
        sort = DEFAULT_SORT
    context = {
        "rows": _overview_rows(sort),
        "sort": sort,
        "can_calculate": request.user.has_perm(CALCULATE),
    }
    if partial_wanted(request) and request.htmx.target == "risk-overview-table":
        response = render(request, "risk/_overview_table.html", context)
    else:
        context["stats"] = selectors.risk_stats()
        response = render(request, "risk/overview.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@permission_required(CALCULATE, raise_exception=True)
@require_POST
def risk_recalculate(request: HttpRequest, code: str) -> HttpResponse:
    """Compute and store a snapshot of a portfolio now; answer with its overview row for htmx."""
    portfolio = get_object_or_404(Portfolio, code=code)
    error = ""
    try:
        services.risk_snapshot_create(portfolio=portfolio, kind=SnapshotKind.ON_DEMAND)
    except ValidationError as exc:
        error = _error_text(exc)
    if request.htmx and request.htmx.target == f"risk-row-{portfolio.code}":
        snapshot = selectors.snapshot_history(portfolio=portfolio).first()
        context = {"row": OverviewRow(portfolio, snapshot), "error": error, "can_calculate": True}
        return render(request, "risk/_overview_row.html", context)
    if error:
        messages.error(request, f"{portfolio.code}: {error}")
    else:
        messages.success(request, f"{portfolio.code}: risk recalculated.")
    return redirect("risk:portfolio", code=portfolio.code)


# ------------------------------------------------------------------------------ one portfolio
def _figure_table(snapshot: RiskSnapshot) -> dict:
    """Return VaR and ES by method (rows) and confidence level (columns) for the snapshot's horizons."""
    levels = sorted({f["confidence"] for f in snapshot.figures})
    cells: dict[tuple, dict] = {}
    for f in snapshot.figures:
        cells[(f["method"], f["horizon_days"], f["confidence"])] = f
    row_keys = list(dict.fromkeys((f["method"], f["horizon_days"]) for f in snapshot.figures))
    rows = [
        {
            "method": METHOD_LABELS.get(method, method),
            "horizon_days": horizon,
            "headline": method == "historical" and horizon == snapshot.horizon_days,
            "cells": [cells.get((method, horizon, level)) for level in levels],
        }
        for method, horizon in row_keys
    ]
    return {"levels": levels, "rows": rows}


def _breakdown(values: dict, total) -> list[dict]:
    """Return {name: component VaR} as rows with their share of the total, largest first."""
    total = float(total or 0)
    rows = [
        {"name": name, "var": value, "share": (value / total) if total and value is not None else None}
        for name, value in (values or {}).items()
    ]
    return sorted(rows, key=lambda r: -abs(r["var"] or 0))


def _contributions(snapshot: RiskSnapshot) -> tuple[list[dict], dict]:
    total = float(snapshot.var or 0)
    rows = [
        {**c, "share": (c["component_var"] / total) if total and c.get("component_var") is not None else None}
        for c in sorted(snapshot.contributions, key=lambda c: -abs(c.get("component_var") or 0))
    ]
    top = rows[:TOP_CONTRIBUTORS]
    chart = {
        "labels": [c["key"] for c in top],
        "values": [c.get("component_var") for c in top],
        "label": f"Component VaR ({snapshot.base_currency})",
    }
    return rows, chart


def _stress_rows(snapshot: RiskSnapshot) -> tuple[list[dict], str | None]:
    rows = sorted(snapshot.stress, key=lambda s: (s.get("kind") != "hypothetical", s.get("pnl") or 0))
    losses = [s for s in rows if s.get("pnl") is not None and s["pnl"] < 0]
    worst = min(losses, key=lambda s: s["pnl"])["name"] if losses else None
    return rows, worst


def _score_features(snapshot: RiskSnapshot) -> list[dict]:
    weights = (snapshot.config or {}).get("score_weights_used") or {}
    return [
        {"name": name, "label": name.replace("_", " "), "value": value, "weight": weights.get(name)}
        for name, value in (snapshot.score_features or {}).items()
    ]


def _score_history(*, portfolio: Portfolio, range_key: str) -> dict:
    """Return the risk score (and VaR) of the portfolio's snapshots in the range, oldest first, for a chart."""
    since = timezone.now() - HISTORY_RANGES[range_key]
    points = list(
        selectors.snapshot_history(portfolio=portfolio, since=since)
        .order_by("as_of", "id")
        .values_list("as_of", "risk_score", "var")
    )
    if len(points) > MAX_CHART_POINTS:
        step = math.ceil(len(points) / MAX_CHART_POINTS)
        points = points[::-step][::-1]  # keep the newest point
    label_format = "%H:%M" if range_key == "24h" else "%m-%d %H:%M"
    config = RiskConfig.get_solo()
    return {
        "labels": [timezone.localtime(at).strftime(label_format) for at, _, _ in points],
        "values": [score for _, score, _ in points],
        "var": [float(var) for _, _, var in points],
        "label": "Risk score",
        "thresholds": {"low": config.score_low, "medium": config.score_medium, "high": config.score_high},
    }


def _history_context(request: HttpRequest, portfolio: Portfolio) -> dict:
    range_key = request.GET.get("range", DEFAULT_HISTORY_RANGE)
    if range_key not in HISTORY_RANGES:
        range_key = DEFAULT_HISTORY_RANGE
    return {
        "history": _score_history(portfolio=portfolio, range_key=range_key),
        "range_key": range_key,
        "ranges": list(HISTORY_RANGES),
    }


def _snapshot_context(snapshot: RiskSnapshot) -> dict:
    contributions, contribution_chart = _contributions(snapshot)
    stress, worst_stress = _stress_rows(snapshot)
    return {
        "figure_table": _figure_table(snapshot),
        "contributions": contributions,
        "contribution_chart": contribution_chart,
        "by_asset_class": _breakdown(snapshot.by_asset_class, snapshot.var),
        "by_currency": _breakdown(snapshot.by_currency, snapshot.var),
        "stress_rows": stress,
        "worst_stress": worst_stress,
        "score_features": _score_features(snapshot),
        "var_fraction": (snapshot.var / snapshot.gross_exposure) if snapshot.gross_exposure else None,
    }


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def risk_portfolio_page(request: HttpRequest, code: str) -> HttpResponse:
    """Show one portfolio's latest risk in full, or an empty state when it has none yet."""
    portfolio = get_object_or_404(Portfolio.objects.select_related("benchmark"), code=code)
    snapshot = selectors.snapshot_history(portfolio=portfolio).first()
    context = {
        "portfolio": portfolio,
        "snapshot": snapshot,
        "can_calculate": request.user.has_perm(CALCULATE),
        **_history_context(request, portfolio),
    }
    if snapshot is not None:
        context.update(_snapshot_context(snapshot))
        context["what_if_form"] = WhatIfForm()
        context["backtest_form"] = BacktestForm()
    return render(request, "risk/portfolio.html", context)


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def risk_score_history(request: HttpRequest, code: str) -> HttpResponse:
    """Render the score history chart of a portfolio for ?range=24h or 30d."""
    portfolio = get_object_or_404(Portfolio, code=code)
    context = {"portfolio": portfolio, **_history_context(request, portfolio)}
    return render(request, "risk/_score_history.html", context)


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def risk_backtest_panel(request: HttpRequest, code: str) -> HttpResponse:
    """Backtest the portfolio's VaR and render the chart and the Basel traffic light (loaded after the page)."""
    portfolio = get_object_or_404(Portfolio, code=code)
    form = BacktestForm(request.GET or None)
    params = form.cleaned_data if form.is_bound and form.is_valid() else {f: form[f].initial for f in form.fields}
    context = {"portfolio": portfolio, "backtest_form": form if form.is_bound else BacktestForm(), "error": ""}
    try:
        result = services.risk_backtest(
            portfolio=portfolio,
            window=int(params["window"]),
            observations=int(params["observations"]),
            confidence=float(params["confidence"]),
        )
    except ValidationError as exc:
        context["error"] = _error_text(exc)
    else:
        answer = backtest_answer(portfolio=portfolio, result=result)
        labels = answer["dates"] or [f"{i - answer['observations']}" for i in range(1, answer["observations"] + 1)]
        context["backtest"] = answer
        context["backtest_chart"] = {
            "labels": labels,
            "pnl": answer["pnl"],
            "var": [-v if v is not None else None for v in answer["var"]],
            "hits": answer["hits"],
            "currency": portfolio.base_currency,
        }
    return render(request, "risk/_backtest.html", context)


def _heat_class(value: float | None, scale: float) -> str:
    """Return the ladder cell's CSS class: ladder-gain-N / ladder-loss-N (N = 1..HEAT_LEVELS) or ladder-flat."""
    if value is None or value == 0 or scale <= 0:
        return "ladder-flat"
    level = min(HEAT_LEVELS, max(1, math.ceil(abs(value) / scale * HEAT_LEVELS)))
    return f"ladder-{'gain' if value > 0 else 'loss'}-{level}"


def _move_label(move: float) -> str:
    return "0%" if move == 0 else f"{move:+.0%}"


def _ladder_rows(ladder: Ladder) -> list[dict]:
    """Return the ladder's grid as table rows (one per vol move) of cells with their heat class; none without a book."""
    if not ladder.has_book:
        return []
    scale = max((abs(v) for row in ladder.pnl for v in row if v is not None), default=0.0)
    return [
        {
            "label": _move_label(vol_move),
            "origin": vol_move == 0,
            "cells": [
                {"pnl": value, "heat": _heat_class(value, scale), "origin": vol_move == 0 and spot_move == 0}
                for spot_move, value in zip(ladder.spot_moves, row, strict=True)
            ],
        }
        for vol_move, row in zip(ladder.vol_moves, ladder.pnl, strict=True)
    ]


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def risk_ladder_panel(request: HttpRequest, code: str) -> HttpResponse:
    """Render the live spot x vol P&L ladder of one underlying (?underlying=, default: the largest gamma)."""
    portfolio = get_object_or_404(Portfolio, code=code)
    error = ""
    try:
        ladder = risk_ladder(portfolio=portfolio, underlying=request.GET.get("underlying") or None)
    except ValidationError as exc:
        # An unknown underlying (a stale link): say so over the default ladder rather than show nothing.
        error = _error_text(exc)
        ladder = risk_ladder(portfolio=portfolio)
    context = {
        "portfolio": portfolio,
        "ladder": ladder,
        "spot_headers": [{"label": _move_label(m), "origin": m == 0} for m in ladder.spot_moves],
        "rows": _ladder_rows(ladder),
        "error": error,
    }
    return render(request, "risk/_ladder.html", context)


@login_required
@permission_required(READ, raise_exception=True)
@require_POST
def risk_what_if_panel(request: HttpRequest, code: str) -> HttpResponse:
    """Show the risk before and after a hypothetical trade; books nothing."""
    portfolio = get_object_or_404(Portfolio, code=code)
    form = WhatIfForm(request.POST)
    result = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = services.risk_what_if(
                portfolio=portfolio,
                symbol=data["symbol"],
                side=data["side"],
                quantity=data["quantity"],
                price=data["price"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
                form.add_error(field if field in form.fields else None, errors)
    return render(request, "risk/_what_if.html", {"portfolio": portfolio, "what_if_form": form, "result": result})


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def risk_explain_panel(request: HttpRequest, code: str) -> HttpResponse:
    """Explain the portfolio's latest snapshot: top contributors, features over threshold, worst stress, changes."""
    portfolio = get_object_or_404(Portfolio, code=code)
    snapshot = selectors.snapshot_history(portfolio=portfolio).first()
    context = {"portfolio": portfolio, "base_currency": portfolio.base_currency, "explanation": None}
    if snapshot is not None:
        explanation = explain.explain_snapshot(snapshot=snapshot, previous=selectors.snapshot_previous(snapshot))
        # The template text repeats the headline and the bullets as paragraphs; show each once.
        repeated = {explanation.headline, *explanation.bullets}
        context["explanation"] = explanation
        context["paragraphs"] = [p for p in explanation.paragraphs if p not in repeated]
    return render(request, "risk/_explain.html", context)


# ------------------------------------------------------------------------------ stress scenarios
@login_required
@permission_required("risk.view_stressscenario", raise_exception=True)
@require_GET
def scenario_list_page(request: HttpRequest) -> HttpResponse:
    """List the stored stress scenarios; Analysts and Admins get links to add and edit."""
    context = {
        "scenarios": StressScenario.objects.select_related("created_by").order_by("name"),
        "can_add": request.user.has_perm("risk.add_stressscenario"),
        "can_change": request.user.has_perm("risk.change_stressscenario"),
    }
    return render(request, "risk/scenarios.html", context)


def _scenario_form_page(request: HttpRequest, scenario: StressScenario | None) -> HttpResponse:
    form = StressScenarioForm(request.POST or None, instance=scenario)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            if scenario is None:
                saved = services.stress_scenario_create(data=data, user=request.user)
            else:
                saved = services.stress_scenario_update(scenario=scenario, data=data, user=request.user)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Scenario “{saved.name}” saved.")
            return redirect("risk:scenarios")
    return render(request, "risk/scenario_form.html", {"form": form, "scenario": scenario})


@login_required
@permission_required("risk.add_stressscenario", raise_exception=True)
def scenario_create_page(request: HttpRequest) -> HttpResponse:
    """Create a stress scenario (Analyst, Admin)."""
    return _scenario_form_page(request, None)


@login_required
@permission_required("risk.change_stressscenario", raise_exception=True)
def scenario_edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a stress scenario (Analyst, Admin)."""
    return _scenario_form_page(request, get_object_or_404(StressScenario, pk=pk))
