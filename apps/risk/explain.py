"""Plain-language explanations of a risk snapshot, grounded in its own numbers.

The text comes from a Django template string filled with figures computed here. When
RISKRADAR_EXPLAIN_LLM_URL is set, an OpenAI-compatible chat completions endpoint is asked to rewrite
the text keeping every number; a rewrite that fails, times out or drops a number is discarded and the
template text is returned, marked source "template" with a note saying why.
"""

import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.template import Context, Engine

from apps.risk.models import RiskConfig, RiskSnapshot

logger = logging.getLogger(__name__)

LLM_TIMEOUT_SECONDS = 10
TOP_CONTRIBUTORS = 3

SOURCE_TEMPLATE = "template"
SOURCE_LLM = "llm"
NOTE_LLM_FAILED = "The LLM rewrite failed ({reason}); showing the template text."
NOTE_LLM_NUMBERS = "The LLM rewrite dropped figures ({missing}); showing the template text."
DECOMPOSITION_NOTE = (
    "How the change is split: the change in each position's component VaR counts as a position change when "
    "its quantity changed (opened, closed, resized), as a price move when the quantity is the same but its "
    "market value moved, and everything else (same quantities and values; volatility, correlation and the "
    "way each position's share depends on the others) is the remainder. It is an attribution by position, "
    "not an exact causal split."
)

LLM_SYSTEM_PROMPT = (
    "You rewrite risk reports for a risk manager. Rewrite the report below in clear, concise prose. Keep "
    "every number exactly as written (same digits, separators, units and signs); add no number, claim or "
    "advice that is not in the report."
)

TEMPLATE = """{{ headline }}

{% if contributors %}Largest contributors to VaR: {% for c in contributors %}{{ c.key }} {{ c.component }} \
({{ c.share }} of VaR){% if not forloop.last %}; {% endif %}{% endfor %}.{% else %}No position contributes to VaR.\
{% endif %}

{% if features %}Risk-score features at or above the LOW threshold ({{ low }}): {% for f in features %}\
{{ f.label }} {{ f.value_text }}{% if not forloop.last %}, {% endif %}{% endfor %}.{% else %}No risk-score feature is \
at or above the LOW threshold ({{ low }}).{% endif %}
{% if worst %}
Worst stress scenario: {{ worst.name }} ({{ worst.kind }}), P&L {{ worst.pnl_text }} ({{ worst.fraction_text }} of \
gross exposure){% if worst.detail %}, {{ worst.detail }}{% endif %}.{% endif %}
{% if changes %}
Since the previous snapshot ({{ changes.previous_as_of }}): VaR {{ changes.var_change_text }} (from \
{{ changes.var_before_text }} to {{ changes.var_after_text }}); position changes {{ changes.position_text }}, \
price moves {{ changes.price_text }}, volatility, correlation and other {{ changes.other_text }}.{% endif %}
"""

FEATURE_LABELS = {
    "var_utilisation": "VaR utilisation",
    "volatility_regime": "volatility regime",
    "concentration": "concentration",
    "drawdown": "drawdown",
    "gamma": "short gamma",
}


@dataclass
class Explanation:
    headline: str
    paragraphs: list[str]
    bullets: list[str]
    source: str  # "template" or "llm"
    top_contributors: list[dict]
    features_over_threshold: list[dict]
    worst_stress: dict | None
    changes: list[dict]  # total, position changes, price moves, other; empty without a previous snapshot
    change_summary: dict | None = None  # the same split as one dict, with the dates and the method note
    note: str = ""
    numbers: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def as_dict(self) -> dict:
        return {**asdict(self), "text": self.text}


# ------------------------------------------------------------------------------ numbers


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "n/a"
    return f"{currency} {value:,.0f}"


def _signed_money(value: float, currency: str) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else ""
    return f"{sign}{currency} {abs(value):,.0f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def top_contributors(snapshot: RiskSnapshot, *, count: int = TOP_CONTRIBUTORS) -> list[dict]:
    """Return the positions with the largest component VaR and their share of the snapshot's VaR."""
    var = float(snapshot.var)
    rows = [r for r in snapshot.contributions if _float(r.get("component_var")) is not None]
    rows.sort(key=lambda r: r["component_var"], reverse=True)
    out = []
    for row in rows[:count]:
        component = float(row["component_var"])
        out.append(
            {
                "key": row["key"],
                "component_var": component,
                "share": component / var if var else None,
                "market_value": _float(row.get("market_value")),
            }
        )
    return out


def features_over_threshold(snapshot: RiskSnapshot, *, low: float) -> list[dict]:
    """Return the score features at or above the LOW threshold, largest first."""
    weights = snapshot.config.get("score_weights_used") or snapshot.config.get("score_weights") or {}
    rows = [
        {"name": name, "value": float(value), "weight": _float(weights.get(name))}
        for name, value in (snapshot.score_features or {}).items()
        if _float(value) is not None and float(value) >= low
    ]
    return sorted(rows, key=lambda r: r["value"], reverse=True)


def worst_stress(snapshot: RiskSnapshot) -> dict | None:
    """Return the stress scenario (hypothetical or historical) with the lowest P&L."""
    rows = [r for r in snapshot.stress if _float(r.get("pnl")) is not None]
    if not rows:
        return None
    worst = min(rows, key=lambda r: r["pnl"])
    return {
        "name": worst["name"],
        "kind": worst.get("kind", ""),
        "pnl": float(worst["pnl"]),
        "pnl_fraction": _float(worst.get("pnl_fraction")),
        "detail": worst.get("detail", "").rstrip("."),
    }


def var_change(snapshot: RiskSnapshot, previous: RiskSnapshot) -> dict:
    """Split the VaR change since `previous` into position changes, price moves and the rest (see the note)."""
    now = {r["key"]: r for r in snapshot.contributions}
    before = {r["key"]: r for r in previous.contributions}
    position = price = 0.0
    moved_positions: list[str] = []
    moved_prices: list[str] = []
    for key in now.keys() | before.keys():
        a, b = now.get(key, {}), before.get(key, {})
        delta = (_float(a.get("component_var")) or 0.0) - (_float(b.get("component_var")) or 0.0)
        if _float(a.get("quantity")) != _float(b.get("quantity")):
            position += delta
            moved_positions.append(key)
        elif _float(a.get("market_value")) != _float(b.get("market_value")):
            price += delta
            moved_prices.append(key)
    total = float(snapshot.var) - float(previous.var)
    return {
        "previous_id": previous.pk,
        "previous_as_of": previous.as_of.isoformat(),
        "var_before": float(previous.var),
        "var_after": float(snapshot.var),
        "var_change": total,
        "position_changes": position,
        "price_moves": price,
        "other": total - position - price,
        "positions_changed": sorted(moved_positions),
        "prices_moved": sorted(moved_prices),
        "method": DECOMPOSITION_NOTE,
    }


def change_lines(changes: dict) -> list[dict]:
    """Return the VaR change as rows: the total, then its position, price and remaining parts."""
    return [
        {"name": "total", "label": "VaR change", "amount": changes["var_change"], "positions": []},
        {
            "name": "position_changes",
            "label": "position changes",
            "amount": changes["position_changes"],
            "positions": changes["positions_changed"],
        },
        {
            "name": "price_moves",
            "label": "price moves",
            "amount": changes["price_moves"],
            "positions": changes["prices_moved"],
        },
        {"name": "other", "label": "volatility, correlation and other", "amount": changes["other"], "positions": []},
    ]


# ------------------------------------------------------------------------------ the explanation


def explain_snapshot(*, snapshot: RiskSnapshot, previous: RiskSnapshot | None = None) -> Explanation:
    """Explain a snapshot: what drives its VaR, which score features are high, the worst stress, what changed."""
    ccy = snapshot.base_currency
    low = _float(snapshot.config.get("score_low"))
    if low is None:
        low = RiskConfig.get_solo().score_low
    contributors = top_contributors(snapshot)
    features = features_over_threshold(snapshot, low=low)
    worst = worst_stress(snapshot)
    changes = var_change(snapshot, previous) if previous is not None else None
    change_rows = change_lines(changes) if changes is not None else []

    headline = (
        f"{snapshot.portfolio.code}: {snapshot.horizon_days}-day {snapshot.confidence:.0%} VaR "
        f"{_money(float(snapshot.var), ccy)} ({_percent(_share(snapshot.var, snapshot.gross_exposure))} of gross "
        f"exposure {_money(float(snapshot.gross_exposure), ccy)}), ES {_money(float(snapshot.es), ccy)}; "
        f"risk score {snapshot.risk_score:.2f} ({snapshot.severity})."
    )
    context = {
        "headline": headline,
        "low": f"{low:.2f}",
        "contributors": [
            {"key": c["key"], "component": _money(c["component_var"], ccy), "share": _percent(c["share"])}
            for c in contributors
        ],
        "features": [
            {"label": FEATURE_LABELS.get(f["name"], f["name"]), "value_text": f"{f['value']:.2f}"} for f in features
        ],
        "worst": worst
        and {
            **worst,
            "pnl_text": _signed_money(worst["pnl"], ccy),
            "fraction_text": _percent(worst["pnl_fraction"]),
        },
        "changes": changes
        and {
            "previous_as_of": f"{previous.as_of:%Y-%m-%d %H:%M} UTC",
            "var_change_text": _signed_money(changes["var_change"], ccy),
            "var_before_text": _money(changes["var_before"], ccy),
            "var_after_text": _money(changes["var_after"], ccy),
            "position_text": _signed_money(changes["position_changes"], ccy),
            "price_text": _signed_money(changes["price_moves"], ccy),
            "other_text": _signed_money(changes["other"], ccy),
        },
    }
    text = Engine(autoescape=False).from_string(TEMPLATE).render(Context(context, autoescape=False))
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    bullets = paragraphs[1:]
    if changes is not None:
        bullets.append(DECOMPOSITION_NOTE)
    explanation = Explanation(
        headline=headline,
        paragraphs=paragraphs,
        bullets=bullets,
        source=SOURCE_TEMPLATE,
        top_contributors=contributors,
        features_over_threshold=features,
        worst_stress=worst,
        changes=change_rows,
        change_summary=changes,
        numbers={
            "var": float(snapshot.var),
            "es": float(snapshot.es),
            "market_value": float(snapshot.market_value),
            "risk_score": snapshot.risk_score,
            "severity": snapshot.severity,
            "currency": ccy,
        },
    )
    return _llm_rewrite(explanation)


def _share(part, whole) -> float | None:
    whole = float(whole)
    return float(part) / abs(whole) if whole else None


# ------------------------------------------------------------------------------ optional LLM rewrite

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers_in(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _llm_rewrite(explanation: Explanation) -> Explanation:
    url = getattr(settings, "RISKRADAR_EXPLAIN_LLM_URL", "")
    if not url:
        return explanation
    model = getattr(settings, "RISKRADAR_EXPLAIN_LLM_MODEL", "")
    key = getattr(settings, "RISKRADAR_EXPLAIN_LLM_KEY", "")
    original = explanation.text
    payload = {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": LLM_SYSTEM_PROMPT},
            {
                "role": "user",
                "content": f"Report:\n{original}\n\nFigures (JSON):\n{json.dumps(_facts(explanation))}",
            },
        ],
    }
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=LLM_TIMEOUT_SECONDS) as response:
            body = json.loads(response.read().decode())
        rewritten = body["choices"][0]["message"]["content"].strip()
        if not rewritten:
            raise ValueError("empty completion")
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        logger.warning("Explanation LLM rewrite failed: %s", exc)
        explanation.note = NOTE_LLM_FAILED.format(reason=type(exc).__name__)
        return explanation
    missing = _numbers_in(original) - _numbers_in(rewritten)
    if missing:
        explanation.note = NOTE_LLM_NUMBERS.format(missing=", ".join(sorted(missing)[:5]))
        return explanation
    explanation.paragraphs = [p.strip() for p in re.split(r"\n\s*\n", rewritten) if p.strip()]
    explanation.source = SOURCE_LLM
    return explanation


def _facts(explanation: Explanation) -> dict:
    return {
        "numbers": explanation.numbers,
        "top_contributors": explanation.top_contributors,
        "features_over_threshold": explanation.features_over_threshold,
        "worst_stress": explanation.worst_stress,
        "changes": explanation.changes or None,
    }
