"""The surveillance pages: the alerts inbox and each alert, surveillance, rules with dry runs, limit increases.

Views parse the request, call a selector or a service of apps.alerts, and render a page, or a fragment for
htmx (a table, a row re-rendered in place, a chart's data). Refused workflow steps come back as the
service's message, shown where the action was taken.
"""

import datetime as dt
import math
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.alerts import dry_run, selectors, services
from apps.alerts.forms import (
    STATUS_ACTIVE,
    AlertFilterForm,
    AlertRuleForm,
    DryRunForm,
    IncreaseDecisionForm,
    LimitIncreaseRequestForm,
    ResolveForm,
    form_errors_from,
    mark_invalid,
)
from apps.alerts.models import (
    ACTIVE_STATUSES,
    LIMIT_KINDS,
    TRADE_KINDS,
    Alert,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    LimitFigure,
    LimitIncrease,
    RuleKind,
    Scope,
)
from apps.alerts.parameters import is_fraction, parameters_default, parameters_validate
from apps.alerts.templatetags.alerts_tags import rule_level
from apps.market.models import AssetClass, Instrument
from apps.portfolios.models import Portfolio
from apps.portfolios.templatetags.riskradar_format import money, percent
from riskradar.pages import partial_wanted

READ = "alerts.view_alert"
READ_RULES = "alerts.view_alertrule"
READ_INCREASES = "alerts.view_limitincrease"
READ_UTILISATION = "alerts.view_limitutilisation"
READ_ATTEMPTS = "alerts.view_notificationattempt"

PAGE_SIZE = 25
STREAM_URL = "/ws/risk-stream?format=html"
SEVERITIES_DOWN = list(reversed(AlertSeverity.values))  # CRITICAL first
CHART_DAYS = 14
CONTEXT_BEFORE = dt.timedelta(hours=6)
CONTEXT_AFTER = dt.timedelta(hours=1)
UTILISATION_RANGES = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
DEFAULT_UTILISATION_RANGE = "24h"
DRY_RUN_SHOWN = 100
TOP_SYMBOLS = 15
RECENT_ANOMALIES = 20

MSG_ACKNOWLEDGED = "Alert #{id} acknowledged."
MSG_RESOLVED = "Alert #{id} resolved as {disposition}."
MSG_BULK_DONE = "{done} of {asked} selected alert(s) acknowledged."
MSG_BULK_SKIPPED = " The others were no longer open."
MSG_BULK_NONE = "Select the alerts to acknowledge first."
MSG_RULE_SAVED = "Rule “{name}” saved; it applies from the next evaluation."
MSG_INCREASE_REQUESTED = "Increase #{id} requested; another person must approve it."
MSG_INCREASE_DONE = {
    "approve": "Increase #{id} approved.",
    "refuse": "Increase #{id} refused.",
    "cancel": "Increase #{id} withdrawn.",
}


def _messages_of(exc: ValidationError | PermissionDenied) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def _require_any(request: HttpRequest, *perms: str) -> None:
    if not any(request.user.has_perm(p) for p in perms):
        raise PermissionDenied


def _bucket_for(span: dt.timedelta) -> str:
    if span <= dt.timedelta(hours=12):
        return "minute"
    return "hour" if span <= dt.timedelta(days=30) else "day"


def _label(at: dt.datetime, bucket: str, span: dt.timedelta) -> str:
    local = timezone.localtime(at)
    if bucket == "day":
        return f"{local:%Y-%m-%d}"
    return f"{local:%H:%M}" if span <= dt.timedelta(hours=24) else f"{local:%m-%d %H:%M}"


# ------------------------------------------------------------------------------ inbox


def _row(alert: Alert) -> dict:
    """Return an alert as an inbox row: the stream's "alert" event data, plus what only the database knows."""
    row = services.alert_event_data(alert, action="listed")
    row.update(first_seen=alert.first_seen, disposition=alert.disposition, rule_name=alert.rule.name)
    return row


def _inbox_context(request: HttpRequest) -> dict:
    form = AlertFilterForm(request.GET)
    valid = form.is_valid()
    alerts = selectors.alert_list(**form.filters()) if valid else Alert.objects.none()
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.urlencode()
    data = form.cleaned_data if valid else {}
    return {
        "filter_form": form,
        "page_obj": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "rows": [_row(alert) for alert in page.object_list],
        "query": query,
        "table_url": reverse("alerts:inbox") + (f"?{query}" if query else ""),
        "current": {
            "status": data.get("status") or STATUS_ACTIVE,
            "severity": data.get("severity") or "",
            "rule": data["rule"].pk if data.get("rule") else "",
            "portfolio": data["portfolio"].code if data.get("portfolio") else "",
        },
        "can_acknowledge": request.user.has_perm(services.PERM_ACKNOWLEDGE),
        "can_resolve": request.user.has_perm(services.PERM_RESOLVE),
    }


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def alert_inbox_page(request: HttpRequest) -> HttpResponse:
    """List alerts, most recently seen first, filtered and paged; the table alone for htmx. New ones arrive live."""
    context = _inbox_context(request)
    if partial_wanted(request):
        response = render(request, "alerts/_table.html", context)
    else:
        context["stream_url"] = STREAM_URL
        response = render(request, "alerts/inbox.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _row_response(request: HttpRequest, alert: Alert, *, error: str = "", template: str = "alerts/_row.html"):
    alert = selectors.alert_list().get(pk=alert.pk)
    return render(request, template, {"row": _row(alert), "error": error, "live": False})


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def alert_row(request: HttpRequest, pk: int) -> HttpResponse:
    """Render one inbox row (after a cancelled resolve form)."""
    return _row_response(request, get_object_or_404(Alert, pk=pk))


@login_required
@permission_required(services.PERM_ACKNOWLEDGE, raise_exception=True)
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """Acknowledge an open alert; htmx gets its row re-rendered (with the reason when refused)."""
    alert = get_object_or_404(Alert, pk=pk)
    error = ""
    try:
        services.alert_acknowledge(alert=alert, user=request.user)
    except services.WorkflowError as exc:
        error = _messages_of(exc)
    if request.htmx:
        return _row_response(request, alert, error=error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, MSG_ACKNOWLEDGED.format(id=alert.pk))
    return redirect("alerts:detail", pk=alert.pk)


@login_required
@permission_required(services.PERM_ACKNOWLEDGE, raise_exception=True)
@require_POST
def alert_acknowledge_many(request: HttpRequest) -> HttpResponse:
    """Acknowledge the selected alerts that are open; answer with the inbox table (filters from the query)."""
    ids = sorted({int(i) for i in request.POST.getlist("ids") if i.isdigit()})
    if ids:
        done = services.alert_acknowledge_many(alert_ids=ids, user=request.user)
        notice = MSG_BULK_DONE.format(done=len(done), asked=len(ids))
        if len(done) < len(ids):
            notice += MSG_BULK_SKIPPED
        level = "success" if done else "warning"
    else:
        notice, level = MSG_BULK_NONE, "warning"
    if request.htmx:
        context = {**_inbox_context(request), "notice": notice, "notice_level": level}
        return render(request, "alerts/_table.html", context)
    getattr(messages, level)(request, notice)
    url = reverse("alerts:inbox")
    return redirect(f"{url}?{request.GET.urlencode()}" if request.GET else url)


@login_required
@permission_required(services.PERM_RESOLVE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def alert_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """Resolve an alert with a disposition and a note. GET (htmx): the inbox row as a resolve form."""
    alert = get_object_or_404(selectors.alert_list(), pk=pk)
    if request.method == "GET":
        if not request.htmx:
            return redirect(f"{reverse('alerts:detail', args=[alert.pk])}#resolve")
        if not alert.is_active:
            error = services.ERR_TRANSITION.format(id=alert.pk, status=alert.status, action="resolved")
            return _row_response(request, alert, error=error)
        return render(request, "alerts/_resolve_row.html", {"row": _row(alert), "form": ResolveForm()})
    form = ResolveForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    try:
        services.alert_resolve(
            alert=alert, user=request.user, disposition=data.get("disposition") or "", note=data.get("note") or ""
        )
    except services.WorkflowError as exc:
        if "status" in exc.message_dict or not request.htmx:
            # Resolved meanwhile (or asked from the alert's page): the refusal, where the action was taken.
            if request.htmx:
                return _row_response(request, alert, error=_messages_of(exc))
            messages.error(request, _messages_of(exc))
            return redirect(f"{reverse('alerts:detail', args=[alert.pk])}#resolve")
        form_errors_from(form, exc, field_map={"resolution_note": "note"})
        return render(request, "alerts/_resolve_row.html", {"row": _row(alert), "form": form})
    if request.htmx:
        return _row_response(request, alert)
    alert.refresh_from_db()
    messages.success(request, MSG_RESOLVED.format(id=alert.pk, disposition=alert.get_disposition_display().lower()))
    return redirect("alerts:detail", pk=alert.pk)


# ------------------------------------------------------------------------------ one alert


FIGURES_HIDDEN = {"trade_ids", "snapshot_id"}  # the trades are listed below; a snapshot id means nothing on a page
FIGURE_TIMES = {"as_of", "window_end"}
LEVEL_KEYS = {"value", "soft", "hard", "limit"}
MONEY_KEYS = {"amount", "gross_exposure", "gross", "net", "market_value", "notional", "median"}
BASIS_LABELS = {"fraction_of_gross": "Share of gross exposure", "amount": "Amount"}


def _figure_text(key: str, value, *, fraction: bool, currency: str, limit: bool) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if key == "utilisation":
        return percent(value, 1)
    if key == "figure":
        return services.FIGURE_NAMES.get(value, str(value))
    if key == "basis":
        return BASIS_LABELS.get(value, str(value))
    if key in FIGURE_TIMES and isinstance(value, str):
        try:
            return f"{timezone.localtime(dt.datetime.fromisoformat(value)):%Y-%m-%d %H:%M:%S}"
        except ValueError:
            return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).capitalize() if key == "level" else str(value)
    if fraction and key in ("value", "soft", "hard", "limit"):
        return percent(value, 2)
    if (key in MONEY_KEYS or (limit and key in LEVEL_KEYS)) and currency:
        return f"{money(value, 0)} {currency}"
    if isinstance(value, int):
        return money(value, 0)
    return money(value, 4 if abs(value) < 10 else 2)


def _figure_rows(alert: Alert) -> list[tuple[str, str]]:
    """Return the figures that triggered the alert as (label, text), formatted for reading."""
    figures = alert.figures or {}
    fraction = is_fraction(alert.rule.kind, alert.rule.parameters or {})
    currency = figures.get("currency") or (alert.portfolio.base_currency if alert.portfolio else "")
    limit = alert.rule.kind in LIMIT_KINDS
    return [
        (
            key.replace("_", " ").capitalize(),
            _figure_text(key, value, fraction=fraction, currency=currency, limit=limit),
        )
        for key, value in figures.items()
        if key not in FIGURES_HIDDEN and key != "currency" and not (key.endswith("_id") and value is None)
    ]


def _alert_chart(alert: Alert) -> dict | None:
    """Return the history of the alert's figure with its soft and hard levels, for a line chart; None without one.

    Risk limits: the LimitUtilisation history of the rule and portfolio. Client exposure: the portfolio's
    snapshots (gross exposure, or the absolute market value for net). From a while before the alert was first
    seen until it was resolved (or now).
    """
    rule, portfolio = alert.rule, alert.portfolio
    if portfolio is None or rule.kind not in (RuleKind.RISK_LIMIT, RuleKind.CLIENT_EXPOSURE):
        return None
    now = timezone.now()
    since = alert.first_seen - CONTEXT_BEFORE
    until = min(now, alert.resolved_at + CONTEXT_AFTER) if alert.resolved_at else now
    span = until - since
    bucket = _bucket_for(span)
    tz = timezone.get_current_timezone()
    figures = alert.figures or {}
    if rule.kind == RuleKind.RISK_LIMIT:
        rows = selectors.limit_utilisation_series(
            portfolio=portfolio, since=since, until=until, rule_id=rule.pk, bucket=bucket, tz=tz
        )
        figure = figures.get("figure") or (rule.parameters or {}).get("figure")
        label = services.FIGURE_NAMES.get(figure, str(figure))
        fraction = is_fraction(rule.kind, rule.parameters or {})
        source = "Limit utilisation history (the highest value in each interval)"
    else:
        measure = figures.get("measure") or (rule.parameters or {}).get("measure", "gross")
        field = "net_exposure" if measure == "net" else "gross_exposure"
        rows = selectors.snapshot_figure_series(
            portfolio=portfolio, figure=field, since=since, until=until, bucket=bucket, tz=tz
        )
        rows = [
            {**r, "value": float(r["value"]), "soft": figures.get("soft"), "hard": figures.get("hard")} for r in rows
        ]
        label, fraction = f"{measure.capitalize()} exposure", False
        source = "The portfolio's risk snapshots (all positions), with the alert's levels"
    if not rows:
        return {"empty": True, "source": source}
    return {
        "labels": [_label(r["at"], bucket, span) for r in rows],
        "value": [r["value"] for r in rows],
        "soft": [r.get("soft") for r in rows],
        "hard": [r.get("hard") for r in rows],
        "label": label,
        "fraction": fraction,
        "currency": "" if fraction else figures.get("currency") or portfolio.base_currency,
        "source": source,
    }


def _timeline(alert: Alert) -> list[dict]:
    events = [{"what": "Raised", "at": alert.first_seen, "who": None, "detail": alert.get_severity_display()}]
    if alert.count > 1:
        events.append({"what": f"Seen again ({alert.count} times in all)", "at": alert.last_seen, "who": None})
    if alert.acknowledged_at:
        events.append({"what": "Acknowledged", "at": alert.acknowledged_at, "who": alert.acknowledged_by})
    if alert.resolved_at:
        what = "Resolved automatically (the condition cleared)" if alert.auto_resolved else "Resolved"
        events.append(
            {
                "what": what,
                "at": alert.resolved_at,
                "who": alert.resolved_by,
                "disposition": alert.get_disposition_display() if alert.disposition else "",
                "note": alert.resolution_note,
            }
        )
    return sorted(events, key=lambda e: e["at"])


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def alert_detail_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Show an alert in context: its figures and their history, the trades involved, the explanation, the workflow."""
    alert = get_object_or_404(selectors.alert_list(), pk=pk)
    context = {
        "alert": alert,
        "row": _row(alert),
        "figures": _figure_rows(alert),
        "chart": _alert_chart(alert),
        "trades": selectors.alert_trades(alert=alert) if alert.rule.kind in TRADE_KINDS else None,
        "timeline": _timeline(alert),
        "can_acknowledge": alert.status == AlertStatus.OPEN and request.user.has_perm(services.PERM_ACKNOWLEDGE),
        "can_resolve": alert.is_active and request.user.has_perm(services.PERM_RESOLVE),
        "resolve_form": ResolveForm(),
        "attempts": (
            alert.notification_attempts.select_related("channel").order_by("at", "id")
            if request.user.has_perm(READ_ATTEMPTS)
            else None
        ),
        "flagged_trade_ids": set((alert.figures or {}).get("trade_ids", [])),
    }
    return render(request, "alerts/detail.html", context)


# ------------------------------------------------------------------------------ charts


def _alert_charts() -> dict:
    stats = selectors.alert_stats(days=CHART_DAYS, tz=timezone.get_current_timezone())
    return {
        "labels": [f"{row['date']:%d %b}" for row in stats.per_day],
        "dates": [row["date"].isoformat() for row in stats.per_day],
        "severities": SEVERITIES_DOWN,
        "per_day": {s: [row[s] for row in stats.per_day] for s in SEVERITIES_DOWN},
        "open": {s: stats.open_by_severity.get(s, 0) for s in SEVERITIES_DOWN},
        "days": stats.days,
    }


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def alert_chart_data(request: HttpRequest) -> HttpResponse:
    """Render the data of the dashboard's alert charts: raised per day by severity, open by severity."""
    return render(request, "dashboard/_alert_charts_data.html", {"alert_charts": _alert_charts()})


@login_required
@permission_required(READ_UTILISATION, raise_exception=True)
@require_GET
def portfolio_utilisation(request: HttpRequest, code: str) -> HttpResponse:
    """Render a portfolio's limit utilisation chart (value over the hard limit, per limit rule) for ?range=."""
    portfolio = get_object_or_404(Portfolio, code=code)
    range_key = request.GET.get("range", DEFAULT_UTILISATION_RANGE)
    if range_key not in UTILISATION_RANGES:
        range_key = DEFAULT_UTILISATION_RANGE
    span = UTILISATION_RANGES[range_key]
    now = timezone.now()
    bucket = "minute" if span <= dt.timedelta(hours=24) else "hour"
    rows = selectors.limit_utilisation_series(
        portfolio=portfolio, since=now - span, until=now, bucket=bucket, tz=timezone.get_current_timezone()
    )
    stamps = sorted({r["at"] for r in rows})
    index = {at: i for i, at in enumerate(stamps)}
    rules = AlertRule.objects.in_bulk({r["rule_id"] for r in rows})
    series: dict[int, list] = {}
    latest: dict[int, float | None] = {}
    for r in rows:
        values = series.setdefault(r["rule_id"], [None] * len(stamps))
        used = r["utilisation"]
        values[index[r["at"]]] = None if used is None or not math.isfinite(used) else round(used * 100, 2)
        latest[r["rule_id"]] = values[index[r["at"]]]
    chart = {
        "labels": [_label(at, bucket, span) for at in stamps],
        "series": [
            {"label": rules[pk].name if pk in rules else f"Rule {pk}", "values": values}
            for pk, values in sorted(series.items(), key=lambda item: rules[item[0]].name if item[0] in rules else "")
        ],
    }
    context = {
        "portfolio": portfolio,
        "chart": chart,
        "latest": sorted(
            ((rules[pk], value) for pk, value in latest.items() if pk in rules), key=lambda item: -(item[1] or 0)
        ),
        "range_key": range_key,
        "ranges": list(UTILISATION_RANGES),
    }
    return render(request, "alerts/_utilisation.html", context)


# ------------------------------------------------------------------------------ surveillance


@dataclass
class ExposureRow:
    label: str
    url: str
    value: float
    gross: float
    net: float
    soft: float | None
    hard: float | None
    unconverted: int
    alert: Alert | None = None

    @property
    def utilisation(self) -> float | None:
        return self.value / self.hard if self.hard else None


def _first_rule(kind: str) -> AlertRule | None:
    for rule in AlertRule.objects.filter(kind=kind, enabled=True).order_by("name"):
        try:
            rule.parameters = parameters_validate(rule.kind, rule.parameters)
        except ValidationError:
            continue
        return rule
    return None


def _levels_of(rule: AlertRule | None, portfolio_id: int | None, increases: dict) -> tuple:
    if rule is None:
        return None, None
    soft, hard, _ = services.levels_in_force(rule, portfolio_id, increases)
    return (float(soft) if soft is not None else None), (float(hard) if hard is not None else None)


def _active_alerts(rule: AlertRule | None) -> dict[str, Alert]:
    if rule is None:
        return {}
    return {a.subject_key: a for a in selectors.alert_list(status=list(ACTIVE_STATUSES), rule_id=rule.pk)}


def _client_rows() -> tuple[AlertRule | None, list[ExposureRow]]:
    rule = _first_rule(RuleKind.CLIENT_EXPOSURE)
    portfolios = Portfolio.objects.filter(is_active=True).order_by("code")
    if rule is None:
        portfolios = portfolios.exclude(client_reference="")
    in_scope = [p for p in portfolios if rule is None or services.portfolio_in_scope(rule, p)]
    exposures = selectors.client_exposures(portfolios=in_scope, rule=rule)
    increases = selectors.limit_increases_in_force(rule_ids=[rule.pk]) if rule else {}
    measure = (rule.parameters if rule else {}).get("measure", "gross")
    alerts = _active_alerts(rule)
    rows = []
    for portfolio in in_scope:
        exposure = exposures[portfolio.pk]
        soft, hard = _levels_of(rule, portfolio.pk, increases)
        rows.append(
            ExposureRow(
                label=portfolio.code,
                url=portfolio.get_absolute_url(),
                value=float(exposure.measure(measure)),
                gross=float(exposure.gross),
                net=float(exposure.net),
                soft=soft,
                hard=hard,
                unconverted=exposure.unconverted,
                alert=alerts.get(f"portfolio:{portfolio.pk}"),
            )
        )
    rows.sort(key=lambda r: (-(r.utilisation or 0), -r.value))
    return rule, rows


def _symbol_rows() -> tuple[AlertRule | None, str, list[ExposureRow]]:
    rule = _first_rule(RuleKind.SYMBOL_CONCENTRATION)
    params = rule.parameters if rule else parameters_default(RuleKind.SYMBOL_CONCENTRATION)
    currency, measure = params["currency"], params["measure"]
    scope = {}
    if rule is not None and rule.scope == Scope.INSTRUMENT:
        scope["instrument_ids"] = [rule.scope_instrument_id]
    elif rule is not None and rule.scope == Scope.ASSET_CLASS:
        scope["asset_class"] = rule.scope_asset_class
    exposures = selectors.symbol_exposures(currency=currency, **scope)
    top = sorted(exposures.items(), key=lambda item: -item[1].measure(measure))[:TOP_SYMBOLS]
    instruments = Instrument.objects.in_bulk([pk for pk, _ in top])
    increases = selectors.limit_increases_in_force(rule_ids=[rule.pk]) if rule else {}
    soft, hard = _levels_of(rule, None, increases)
    alerts = _active_alerts(rule)
    rows = [
        ExposureRow(
            label=instruments[pk].symbol,
            url=instruments[pk].get_absolute_url(),
            value=float(exposure.measure(measure)),
            gross=float(exposure.gross),
            net=float(exposure.net),
            soft=soft,
            hard=hard,
            unconverted=exposure.unconverted,
            alert=alerts.get(f"instrument:{pk}"),
        )
        for pk, exposure in top
        if pk in instruments
    ]
    return rule, currency, rows


def _surveillance_context() -> dict:
    client_rule, clients = _client_rows()
    symbol_rule, symbol_currency, symbols = _symbol_rows()
    velocity_rule = _first_rule(RuleKind.TRADE_VELOCITY)
    return {
        "client_rule": client_rule,
        "clients": clients,
        "client_measure": (client_rule.parameters if client_rule else {}).get("measure", "gross"),
        "symbol_rule": symbol_rule,
        "symbol_currency": symbol_currency,
        "symbols": symbols,
        "velocity_rule": velocity_rule,
        "velocity": selectors.velocity_leaders(),
        "anomalies": [
            (alert, _row(alert))
            for alert in selectors.alerts_recent(
                kinds=[RuleKind.TRADE_ZSCORE, RuleKind.TRADE_ANOMALY], limit=RECENT_ANOMALIES
            )
        ],
        "checked_at": timezone.now(),
    }


@login_required
@permission_required(READ, raise_exception=True)
@require_GET
def surveillance_page(request: HttpRequest) -> HttpResponse:
    """Show client exposures against their limit, firm-wide symbol concentration, velocity leaders and anomalies."""
    context = _surveillance_context()
    template = "alerts/_surveillance.html" if partial_wanted(request) else "alerts/surveillance.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# ------------------------------------------------------------------------------ rules


def _scope_text(rule: AlertRule) -> str:
    if rule.scope == Scope.PORTFOLIO and rule.scope_portfolio is not None:
        return f"Portfolio {rule.scope_portfolio.code}"
    if rule.scope == Scope.INSTRUMENT and rule.scope_instrument is not None:
        return f"Instrument {rule.scope_instrument.symbol}"
    if rule.scope == Scope.ASSET_CLASS:
        return f"Asset class {AssetClass(rule.scope_asset_class).label.lower()}" if rule.scope_asset_class else "—"
    return "Everything"


def levels_text(rule: AlertRule) -> str:
    """Describe a rule's levels or thresholds in a few words ("VaR: soft 4.00%, hard 5.00% of gross")."""
    params = {**parameters_default(rule.kind), **(rule.parameters or {})}
    kind = rule.kind
    if kind in LIMIT_KINDS:
        levels = [f"soft {rule_level(params['soft'], rule)}"] if params.get("soft") is not None else []
        levels.append(f"hard {rule_level(params.get('hard'), rule)}")
        if kind == RuleKind.RISK_LIMIT:
            figure = params.get("figure")
            name = LimitFigure(figure).label if figure in LimitFigure.values else str(figure)
            basis = " of gross" if figure in ("var", "es") and params.get("basis") == "fraction_of_gross" else ""
            return f"{name}: {', '.join(levels)}{basis}"
        return f"{params.get('measure', 'gross').capitalize()}: {', '.join(levels)}"
    if kind == RuleKind.TRADE_VELOCITY:
        return f"More than {params['max_trades']} trades in {params['window_seconds']} s"
    if kind == RuleKind.TRADE_ZSCORE:
        return f"Robust z above {params['threshold']} (last {params['lookback_trades']} trades)"
    if kind == RuleKind.TRADE_ANOMALY:
        return f"Score above {params['threshold']}"
    if kind == RuleKind.PRICE_MOVE:
        return f"Move above {percent(params['move'], 1)} in {params['window_minutes']} min ({params['direction']})"
    if kind == RuleKind.STALE_DATA:
        age = f"{params['max_age_seconds']} s" if params.get("max_age_seconds") else "the feed's stale age"
        return f"No tick for more than {age}" + (" while open" if params.get("only_when_open") else "")
    return "—"


@login_required
@permission_required(READ_RULES, raise_exception=True)
@require_GET
def rule_list_page(request: HttpRequest) -> HttpResponse:
    """List every rule with its kind, scope, levels, severity, state and precision from the dispositions."""
    rules = list(selectors.alert_rule_list())
    precision = selectors.rule_precision(rule_ids=[r.pk for r in rules])
    rows = [
        {"rule": r, "scope": _scope_text(r), "levels": levels_text(r), "precision": precision.get(r.pk)} for r in rules
    ]
    context = {
        "rows": rows,
        "can_add": request.user.has_perm(services.PERM_ADD_RULE),
        "can_change": request.user.has_perm(services.PERM_CHANGE_RULE),
    }
    return render(request, "alerts/rules.html", context)


def _rule_form_page(request: HttpRequest, rule: AlertRule | None) -> HttpResponse:
    form = AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        try:
            if rule is None:
                saved = services.alert_rule_create(data=form.rule_data(), user=request.user)
            else:
                saved = services.alert_rule_update(rule=rule, data=form.rule_data(), user=request.user)
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, MSG_RULE_SAVED.format(name=saved.name))
            return redirect(f"{reverse('alerts:rules')}#rule-{saved.pk}")
    else:
        mark_invalid(form)
    context = {"form": form, "rule": rule, "dry_run_form": DryRunForm()}
    return render(request, "alerts/rule_form.html", context)


@login_required
@permission_required(services.PERM_ADD_RULE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rule_create_page(request: HttpRequest) -> HttpResponse:
    """Create a rule (Admin); a dry run of it is offered before saving."""
    return _rule_form_page(request, None)


@login_required
@permission_required(services.PERM_CHANGE_RULE, raise_exception=True)
@require_http_methods(["GET", "POST"])
def rule_edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a rule (Admin); the next evaluation uses the change."""
    return _rule_form_page(request, get_object_or_404(AlertRule, pk=pk))


@login_required
@require_GET
def rule_parameters(request: HttpRequest) -> HttpResponse:
    """Render the parameter fields of a kind (?kind=), with its defaults, when the rule form's kind changes."""
    _require_any(request, services.PERM_ADD_RULE, services.PERM_CHANGE_RULE)
    form = AlertRuleForm(initial={"kind": request.GET.get("kind", "")})
    return render(request, "alerts/_rule_params.html", {"form": form})


def _dry_run_context(rule: AlertRule, since: dt.datetime, until: dt.datetime) -> dict:
    """Replay the rule and shape the result: totals, a bar per UTC day of the range, the first alerts."""
    result = dry_run.rule_dry_run(rule=rule, since=since, until=until)
    per_day = result.per_day()
    first, last = since.astimezone(dt.UTC).date(), until.astimezone(dt.UTC).date()
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return {
        "result": result,
        "per_day": [(day, n) for day, n in per_day.items()],
        "chart": {
            "labels": [f"{day:%d %b}" for day in days],
            "values": [per_day.get(day, 0) for day in days],
            "label": "Alerts raised (UTC day)",
        },
        "alerts_shown": result.alerts[:DRY_RUN_SHOWN],
        "since": since,
        "until": until,
    }


@login_required
@permission_required(READ_RULES, raise_exception=True)
@require_GET
def rule_dry_run_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Replay a saved rule over ?since= .. ?until= and show how many alerts it would have raised, and when."""
    rule = get_object_or_404(AlertRule.objects.select_related("scope_portfolio", "scope_instrument"), pk=pk)
    form = DryRunForm(request.GET if "since" in request.GET else None)
    context = {"rule": rule, "dry_run_form": form, "scope": _scope_text(rule), "levels": levels_text(rule)}
    if form.is_bound and form.is_valid():
        try:
            context.update(_dry_run_context(rule, form.cleaned_data["since"], form.cleaned_data["until"]))
        except ValidationError as exc:
            context["dry_run_error"] = _messages_of(exc)
    template = "alerts/_dry_run_result.html" if partial_wanted(request) else "alerts/rule_dry_run.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_POST
def rule_dry_run_unsaved(request: HttpRequest) -> HttpResponse:
    """Replay the rule as edited in the form, before it is saved (Admin); nothing is written."""
    _require_any(request, services.PERM_ADD_RULE, services.PERM_CHANGE_RULE)
    rule_id = request.POST.get("rule_id", "")
    instance = get_object_or_404(AlertRule, pk=rule_id) if rule_id.isdigit() else None
    form = AlertRuleForm(request.POST, instance=instance)
    dry_run_form = DryRunForm(request.POST)
    context: dict = {"unsaved": True, "dry_run_form": dry_run_form}
    if not (form.is_valid() and dry_run_form.is_valid()):
        errors = [f"{name}: {' '.join(e)}" for name, e in {**form.errors, **dry_run_form.errors}.items()]
        context["dry_run_error"] = " ".join(errors)
    else:
        try:
            context.update(
                _dry_run_context(
                    form.unsaved_rule(), dry_run_form.cleaned_data["since"], dry_run_form.cleaned_data["until"]
                )
            )
        except ValidationError as exc:
            context["dry_run_error"] = _messages_of(exc)
    return render(request, "alerts/_dry_run_result.html", context)


# ------------------------------------------------------------------------------ limit increases


def _limit_rules() -> list[dict]:
    rules = list(selectors.alert_rule_list().filter(kind__in=LIMIT_KINDS))
    in_force = selectors.limit_increases_in_force(rule_ids=[r.pk for r in rules])
    by_rule: dict[int, list[LimitIncrease]] = {}
    for (rule_id, _), increase in in_force.items():
        by_rule.setdefault(rule_id, []).append(increase)
    return [{"rule": r, "scope": _scope_text(r), "increases": by_rule.get(r.pk, [])} for r in rules]


def _limits_page(request: HttpRequest, form: LimitIncreaseRequestForm | None = None, status: int = 200):
    can_request = request.user.has_perm(services.PERM_REQUEST_INCREASE)
    page = Paginator(selectors.limit_increase_list(), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form or (LimitIncreaseRequestForm() if can_request else None),
        "can_request": can_request,
        "can_approve": request.user.has_perm(services.PERM_APPROVE_INCREASE),
        "limit_rules": _limit_rules(),
        "page_obj": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
    }
    return render(request, "alerts/limits.html", context, status=status)


@login_required
@permission_required(READ_INCREASES, raise_exception=True)
@require_GET
def limit_increase_page(request: HttpRequest) -> HttpResponse:
    """The limits in force, a request form for temporary increases, and every increase ever requested."""
    return _limits_page(request)


@login_required
@permission_required(services.PERM_REQUEST_INCREASE, raise_exception=True)
@require_POST
def limit_increase_request(request: HttpRequest) -> HttpResponse:
    """Request a temporary increase of a limit rule's levels (Analyst, Admin); another person decides."""
    form = LimitIncreaseRequestForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            increase = services.limit_increase_request(
                rule=data["rule"],
                user=request.user,
                reason=data.get("reason") or "",
                expires_at=data.get("expires_at"),
                new_soft=data.get("new_soft") or None,
                new_hard=data.get("new_hard") or None,
                portfolio=data.get("portfolio"),
            )
        except ValidationError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, MSG_INCREASE_REQUESTED.format(id=increase.pk))
            return redirect(f"{reverse('alerts:limits')}#increase-{increase.pk}")
    mark_invalid(form)
    return _limits_page(request, form, status=422)


@login_required
@permission_required(READ_INCREASES, raise_exception=True)
@require_POST
def limit_increase_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve, refuse or withdraw an increase; four eyes is the service's: a refusal says why, in place."""
    increase = get_object_or_404(LimitIncrease, pk=pk)
    form = IncreaseDecisionForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Choose approve, refuse or cancel.", status=400, content_type="text/plain")
    decision, note = form.cleaned_data["decision"], form.cleaned_data.get("note") or ""
    step = {
        "approve": services.limit_increase_approve,
        "refuse": services.limit_increase_refuse,
        "cancel": services.limit_increase_cancel,
    }[decision]
    error = ""
    try:
        step(increase=increase, user=request.user, note=note)
    except ValidationError as exc:
        error = _messages_of(exc)
    if request.htmx:
        increase = selectors.limit_increase_list().get(pk=increase.pk)
        context = {
            "increase": increase,
            "error": error,
            "can_approve": request.user.has_perm(services.PERM_APPROVE_INCREASE),
        }
        return render(request, "alerts/_increase_row.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, MSG_INCREASE_DONE[decision].format(id=increase.pk))
    return redirect(f"{reverse('alerts:limits')}#increase-{increase.pk}")
