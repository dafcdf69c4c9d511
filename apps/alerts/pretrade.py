"""Pre-trade checks: which rules a proposed trade would breach, and the hard limits booking refuses.

`trade_check()` answers POST /api/v1/trades/check: every limit rule covering the portfolio (and velocity
and notional z-score) against the book after the trade, with the VaR and ES before and after from
apps.risk.services.risk_what_if. `hard_limit_breaches()` is the cheaper check booking runs, and
`trade_hard_limits_check()` the refusal, unless an allowed user asks to override (audited by
apps.alerts.services.trade_booked).
"""

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.alerts import conditions
from apps.alerts.conditions import BREACH, HARD, limit_level, utilisation
from apps.alerts.models import LIMIT_KINDS, AlertRule, LimitFigure, RuleKind, Scope
from apps.alerts.parameters import BASIS_AMOUNT, BASIS_FIGURES, is_fraction
from apps.alerts.selectors import limit_increases_in_force, position_values, symbol_exposures
from apps.alerts.services import (
    FIGURE_NAMES,
    PERM_OVERRIDE,
    EvaluationContext,
    as_float,
    format_value,
    levels_in_force,
    portfolio_in_scope,
    rules_enabled,
    trade_notional,
    trade_scope_q,
)
from apps.market.models import Instrument
from apps.market.selectors import FxTable
from apps.portfolios.models import Portfolio, Position, Side, Trade

ERR_HARD_LIMIT = "The trade would breach hard limit(s): {rules}."
ERR_NO_OVERRIDE = " Your role may not override hard limits."
ERR_NO_PRICE = "{symbol} has no price; give one."
PRE_TRADE_EXTERNAL_ID = "pre-trade-check"
WHAT_IF_FIGURES = frozenset({LimitFigure.VAR, LimitFigure.ES, LimitFigure.RISK_SCORE})
POSITION_FIGURES = frozenset({LimitFigure.GROSS_EXPOSURE, LimitFigure.NET_EXPOSURE, LimitFigure.POSITION_WEIGHT})


@dataclass(frozen=True)
class Breach:
    """A rule a proposed trade would breach: its level (soft, hard, or breach for rules without levels).

    `worsens` says the trade moves the figure up (a trade that reduces a breach is never blocked);
    `blocking` is a hard breach the trade worsens, which booking refuses without an override.
    """

    rule_id: int
    rule: str
    kind: str
    level: str
    figure: str
    before: float | None
    after: float | None
    limit: float | None
    utilisation: float | None
    worsens: bool
    message: str

    @property
    def blocking(self) -> bool:
        return self.level == HARD and self.worsens


@dataclass
class TradeCheck:
    """The answer of a pre-trade check: the breaches, the VaR and ES before and after, what was not checked."""

    portfolio: str
    symbol: str
    side: str
    quantity: float
    price: float
    currency: str
    var_before: float | None
    var_after: float | None
    es_before: float | None
    es_after: float | None
    breaches: list[Breach] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    what_if: dict | None = None

    @property
    def hard_breaches(self) -> list[Breach]:
        return [b for b in self.breaches if b.blocking]


def _rule_covers(rule: AlertRule, portfolio: Portfolio, instrument: Instrument) -> bool:
    if not portfolio_in_scope(rule, portfolio):
        return False
    if rule.kind in (RuleKind.TRADE_VELOCITY, RuleKind.TRADE_ZSCORE, RuleKind.SYMBOL_CONCENTRATION):
        if rule.scope == Scope.INSTRUMENT:
            return rule.scope_instrument_id == instrument.pk
        if rule.scope == Scope.ASSET_CLASS:
            return rule.scope_asset_class == instrument.asset_class
    return True


class _Book:
    """A portfolio's positions valued in base currency now, and after a proposed trade."""

    def __init__(self, portfolio: Portfolio, instrument: Instrument, signed: Decimal, price: Decimal, fx: FxTable):
        self.base = portfolio.base_currency
        self.instrument = instrument
        self.rows = list(
            position_values(portfolio_ids=[portfolio.pk]).values(
                "instrument_id", "instrument__symbol", "instrument__asset_class", "instrument__currency", "value"
            )
        )
        self.fx = fx
        self.rate = fx.rate(instrument.currency, self.base)
        row = next((r for r in self.rows if r["instrument_id"] == instrument.pk), None)
        held = Position.objects.filter(portfolio=portfolio, instrument=instrument).values_list("quantity", flat=True)
        quantity = held.first() or Decimal(0)
        # The position is valued at its mark (latest price) before and after; the trade's price stands in
        # for an instrument with no price yet.
        marked = row is not None and row["value"] is not None and quantity
        unit = Decimal(row["value"]) / quantity if marked else Decimal(price) * instrument.multiplier
        self.position_before = quantity * unit
        self.position_after = (quantity + signed) * unit

    def values(self, *, after: bool, instrument_id: int | None = None, asset_class: str = "") -> list[tuple]:
        """Return (symbol, value in base currency) of the positions in scope, before or after the trade."""
        answer = []
        seen = False
        for row in self.rows:
            if instrument_id is not None and row["instrument_id"] != instrument_id:
                continue
            if asset_class and row["instrument__asset_class"] != asset_class:
                continue
            value = row["value"]
            if row["instrument_id"] == self.instrument.pk:
                seen = True
                value = self.position_after if after else self.position_before
            rate = self.fx.rate(row["instrument__currency"], self.base)
            if value is not None and rate is not None:
                answer.append((row["instrument__symbol"], Decimal(value) * rate))
        in_scope = (instrument_id in (None, self.instrument.pk)) and (
            not asset_class or asset_class == self.instrument.asset_class
        )
        if after and not seen and in_scope and self.rate is not None:
            answer.append((self.instrument.symbol, self.position_after * self.rate))
        return answer


def _exposure(values: list[tuple], measure: str) -> Decimal:
    if measure == "net":
        return abs(sum((v for _, v in values), Decimal(0)))
    return sum((abs(v) for _, v in values), Decimal(0))


def _largest(values: list[tuple], gross: Decimal) -> Decimal:
    if not values or gross <= 0:
        return Decimal(0)
    return max(abs(v) for _, v in values) / gross


def _scope_of(rule: AlertRule) -> dict:
    if rule.scope == Scope.INSTRUMENT:
        return {"instrument_id": rule.scope_instrument_id}
    if rule.scope == Scope.ASSET_CLASS:
        return {"asset_class": rule.scope_asset_class}
    return {}


def _limit_breach(
    rule: AlertRule, *, figure: str, before, after, soft, hard, fraction: bool, currency: str
) -> Breach | None:
    level = limit_level(after, soft=soft, hard=hard)
    if level is None or (before is not None and conditions.as_decimal(after) == conditions.as_decimal(before)):
        return None  # within the limits, or a breach the trade does not change
    limit = hard if level == HARD else soft
    shown = {
        name: format_value(v, fraction=fraction, currency=currency)
        for name, v in (("after", after), ("limit", limit), ("before", before))
    }
    return Breach(
        rule_id=rule.pk,
        rule=rule.name,
        kind=rule.kind,
        level=level,
        figure=figure,
        before=as_float(before),
        after=as_float(after),
        limit=as_float(limit),
        utilisation=utilisation(after, hard if hard is not None else soft),
        worsens=before is None or conditions.as_decimal(after) > conditions.as_decimal(before),
        message=(
            f"{rule.name}: {shown['after']} after the trade, above the {level} limit of {shown['limit']} "
            f"(before: {shown['before']})."
        ),
    )


def _what_if_value(params: dict, side: dict) -> Decimal | None:
    figure = params["figure"]
    if figure in BASIS_FIGURES:
        amount = side.get("var") if figure == LimitFigure.VAR else side.get("es")
        if amount is None:
            return None
        if params.get("basis") == BASIS_AMOUNT:
            return conditions.as_decimal(amount)
        gross, net = side.get("gross_exposure") or 0, side.get("market_value") or 0
        base = gross if gross > 0 else abs(net)  # as apps.risk.engine.revalue.value_base
        return conditions.as_decimal(amount / base) if base else None
    return conditions.as_decimal(side.get("risk_score"))


class _NotChecked(Exception):
    """A rule a pre-trade check cannot assess (the figure needs a full recalculation, or an FX rate is missing)."""


@dataclass
class _Proposal:
    """What the per-rule checks share: the trade, the book before and after it, and the what-if figures."""

    portfolio: Portfolio
    instrument: Instrument
    signed: Decimal
    price: Decimal
    book: _Book
    before: dict
    after: dict
    ctx: EvaluationContext


def _check_risk_limit(rule: AlertRule, p: _Proposal) -> Breach | None:
    params = rule.parameters
    figure = params["figure"]
    if figure in WHAT_IF_FIGURES:
        value_before, value_after = _what_if_value(params, p.before), _what_if_value(params, p.after)
    elif figure in POSITION_FIGURES:
        if p.book.rate is None:
            raise _NotChecked(f"no FX rate {p.instrument.currency}/{p.portfolio.base_currency}")
        all_before, all_after = p.book.values(after=False), p.book.values(after=True)
        if figure == LimitFigure.POSITION_WEIGHT:
            scope = _scope_of(rule)
            value_before = _largest(p.book.values(after=False, **scope), _exposure(all_before, "gross"))
            value_after = _largest(p.book.values(after=True, **scope), _exposure(all_after, "gross"))
        else:
            measure = "net" if figure == LimitFigure.NET_EXPOSURE else "gross"
            value_before, value_after = _exposure(all_before, measure), _exposure(all_after, measure)
    else:
        raise _NotChecked(f"{FIGURE_NAMES[figure].lower()} needs a full recalculation")
    if value_after is None:
        raise _NotChecked("no figure after the trade")
    soft, hard, _ = levels_in_force(rule, p.portfolio.pk, p.ctx.increases)
    return _limit_breach(
        rule,
        figure=figure,
        before=value_before,
        after=value_after,
        soft=soft,
        hard=hard,
        fraction=is_fraction(rule.kind, params),
        currency=p.portfolio.base_currency,
    )


def _check_client_exposure(rule: AlertRule, p: _Proposal) -> Breach | None:
    if p.book.rate is None:
        raise _NotChecked(f"no FX rate {p.instrument.currency}/{p.portfolio.base_currency}")
    measure, scope = rule.parameters["measure"], _scope_of(rule)
    soft, hard, _ = levels_in_force(rule, p.portfolio.pk, p.ctx.increases)
    return _limit_breach(
        rule,
        figure=f"client_exposure_{measure}",
        before=_exposure(p.book.values(after=False, **scope), measure),
        after=_exposure(p.book.values(after=True, **scope), measure),
        soft=soft,
        hard=hard,
        fraction=False,
        currency=p.portfolio.base_currency,
    )


def _check_symbol_concentration(rule: AlertRule, p: _Proposal) -> Breach | None:
    currency, measure = rule.parameters["currency"], rule.parameters["measure"]
    rate = p.ctx.fx.rate(p.instrument.currency, currency)
    if rate is None:
        raise _NotChecked(f"no FX rate {p.instrument.currency}/{currency}")
    exposure = symbol_exposures(currency=currency, instrument_ids=[p.instrument.pk], fx=p.ctx.fx).get(p.instrument.pk)
    gross, net = (exposure.gross, exposure.net) if exposure else (Decimal(0), Decimal(0))
    if measure == "net":
        value_before = abs(net)
        value_after = abs(net + (p.book.position_after - p.book.position_before) * rate)
    else:
        value_before = gross
        value_after = gross + (abs(p.book.position_after) - abs(p.book.position_before)) * rate
    soft, hard, _ = levels_in_force(rule, None, p.ctx.increases)
    return _limit_breach(
        rule,
        figure=f"symbol_exposure_{measure}",
        before=value_before,
        after=value_after,
        soft=soft,
        hard=hard,
        fraction=False,
        currency=currency,
    )


def _check_velocity(rule: AlertRule, p: _Proposal) -> Breach | None:
    params = rule.parameters
    window = dt.timedelta(seconds=params["window_seconds"])
    recent = Trade.objects.filter(
        trade_scope_q(rule), portfolio=p.portfolio, traded_at__gt=p.ctx.now - window, traded_at__lte=p.ctx.now
    )
    count = recent.count() + 1
    if not conditions.velocity_breach(count, max_trades=params["max_trades"]):
        return None
    return Breach(
        rule_id=rule.pk,
        rule=rule.name,
        kind=rule.kind,
        level=BREACH,
        figure="trades_in_window",
        before=float(count - 1),
        after=float(count),
        limit=float(params["max_trades"]),
        utilisation=count / params["max_trades"],
        worsens=True,
        message=(
            f"{rule.name}: {count} trades in {params['window_seconds']} s with this one, "
            f"more than {params['max_trades']}."
        ),
    )


def _check_zscore(rule: AlertRule, p: _Proposal) -> Breach | None:
    params = rule.parameters
    base = p.portfolio.base_currency
    history = list(
        Trade.objects.filter(trade_scope_q(rule), portfolio=p.portfolio)
        .order_by("-traded_at", "-id")
        .values_list("quantity", "price", "instrument__multiplier", "instrument__currency")[: params["lookback_trades"]]
    )
    notional = trade_notional(abs(p.signed), p.price, p.instrument.multiplier, p.instrument.currency, base, p.ctx.fx)
    past = [n for n in (trade_notional(*row, base, p.ctx.fx) for row in history) if n is not None]
    if notional is None or len(past) < params["min_history"] or notional < Decimal(str(params["min_notional"])):
        return None
    z, median, _ = conditions.robust_zscore(float(notional), [float(n) for n in past])
    if not conditions.zscore_breach(z, threshold=params["threshold"]):
        return None
    finite = math.isfinite(z)
    return Breach(
        rule_id=rule.pk,
        rule=rule.name,
        kind=rule.kind,
        level=BREACH,
        figure="notional_zscore",
        before=None,
        after=z if finite else None,
        limit=float(params["threshold"]),
        utilisation=z / params["threshold"] if finite else None,
        worsens=True,
        message=(
            f"{rule.name}: a notional of {format_value(notional, fraction=False, currency=base)} is an outlier "
            f"for this client (median {format_value(median, fraction=False, currency=base)})."
        ),
    )


CHECKS = {
    RuleKind.RISK_LIMIT: _check_risk_limit,
    RuleKind.CLIENT_EXPOSURE: _check_client_exposure,
    RuleKind.SYMBOL_CONCENTRATION: _check_symbol_concentration,
    RuleKind.TRADE_VELOCITY: _check_velocity,
    RuleKind.TRADE_ZSCORE: _check_zscore,
}


def _trade_check(
    *, portfolio: Portfolio, instrument: Instrument, side: str, quantity, price, levels_only: bool, with_what_if: bool
) -> TradeCheck:
    # apps.risk.services imports apps.portfolios.services, which calls this module while booking.
    from apps.market.selectors import latest_prices
    from apps.portfolios.services import check_trade
    from apps.risk.services import risk_what_if

    ctx = EvaluationContext(None)
    kinds = LIMIT_KINDS if levels_only else {*LIMIT_KINDS, *(k for k in CHECKS if k not in LIMIT_KINDS)}
    rules = [r for r in rules_enabled(kinds) if _rule_covers(r, portfolio, instrument)]
    need_what_if = with_what_if or any(
        r.kind == RuleKind.RISK_LIMIT and r.parameters["figure"] in WHAT_IF_FIGURES for r in rules
    )
    what_if = None
    if need_what_if:
        what_if = risk_what_if(portfolio=portfolio, symbol=instrument.symbol, side=side, quantity=quantity, price=price)
        if price is None:
            price = Decimal(repr(what_if["trade"]["price"]))
    elif price is None:
        known = latest_prices(instrument_ids=[instrument.pk]).get(instrument.pk)
        if known is None:
            raise ValidationError({"price": ERR_NO_PRICE.format(symbol=instrument.symbol)})
        price = known.value
    fields = check_trade(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        traded_at=timezone.now(),
        external_id=PRE_TRADE_EXTERNAL_ID,
    )
    signed = fields["quantity"] if side == Side.BUY else -fields["quantity"]
    before, after = (what_if or {}).get("before") or {}, (what_if or {}).get("after") or {}
    check = TradeCheck(
        portfolio=portfolio.code,
        symbol=instrument.symbol,
        side=side,
        quantity=float(fields["quantity"]),
        price=float(fields["price"]),
        currency=portfolio.base_currency,
        var_before=before.get("var"),
        var_after=after.get("var"),
        es_before=before.get("es"),
        es_after=after.get("es"),
        what_if=what_if,
    )
    if not rules:
        return check
    ctx.increases = limit_increases_in_force(rule_ids=[r.pk for r in rules], now=ctx.now)
    proposal = _Proposal(
        portfolio=portfolio,
        instrument=instrument,
        signed=signed,
        price=fields["price"],
        book=_Book(portfolio, instrument, signed, fields["price"], ctx.fx),
        before=before,
        after=after,
        ctx=ctx,
    )
    for rule in rules:
        try:
            breach = CHECKS[rule.kind](rule, proposal)
        except _NotChecked as exc:
            check.not_checked.append(f"{rule.name}: {exc}")
            continue
        if breach is not None:
            check.breaches.append(breach)
    return check


def trade_check(*, portfolio: Portfolio, instrument: Instrument, side: str, quantity, price=None) -> TradeCheck:
    """Return which rules a proposed trade would breach, and the VaR and ES before and after it.

    Levels: soft or hard for limit rules, "breach" for velocity and the notional z-score. A rule is listed
    when its figure after the trade is above a level and the trade changes it; `Breach.worsens` says
    whether it goes up. VaR, ES and the risk score come from apps.risk.services.risk_what_if; exposures
    and weights from the positions at their latest prices. Limits on volatility and drawdown need a full
    recalculation and are listed in `not_checked`. Nothing is booked; bad input raises the booking's
    ValidationError naming the field. `price` None means the latest price.
    """
    return _trade_check(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        levels_only=False,
        with_what_if=True,
    )


def hard_limit_breaches(
    *, portfolio: Portfolio, instrument: Instrument, side: str, quantity, price=None
) -> list[Breach]:
    """Return the hard limits a proposed trade would breach and make worse: what booking refuses.

    Only limit rules are checked, and the what-if runs only when a VaR, ES or risk-score limit covers
    the portfolio.
    """
    check = _trade_check(
        portfolio=portfolio,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        levels_only=True,
        with_what_if=False,
    )
    return check.hard_breaches


def trade_hard_limits_check(
    *, portfolio: Portfolio, instrument: Instrument, side: str, quantity, price, user, override: bool = False
) -> list[Breach]:
    """Refuse a trade that breaches a hard limit, unless `override` is asked by a user who may override.

    Returns the breaches overridden (empty when there are none); the booking passes them to
    apps.alerts.services.trade_booked(), which records the override in the audit log with the trade.
    Otherwise raises ValidationError on "limits" naming each rule.
    """
    breaches = hard_limit_breaches(
        portfolio=portfolio, instrument=instrument, side=side, quantity=quantity, price=price
    )
    if not breaches:
        return []
    if override and user is not None and user.has_perm(PERM_OVERRIDE):
        return breaches
    message = ERR_HARD_LIMIT.format(rules="; ".join(b.message for b in breaches))
    if override:
        message += ERR_NO_OVERRIDE
    raise ValidationError({"limits": message})
