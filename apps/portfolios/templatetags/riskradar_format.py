"""Number formatting for the risk pages: thousands separators, sensible decimals, a dash when missing."""

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from django import template

register = template.Library()

MISSING = "—"
# Room for any stored figure (24 digits, 8 after the point) times an FX rate, rounded half up as people expect.
_ROUNDING = Context(prec=80, rounding=ROUND_HALF_UP)


def _number(value) -> Decimal | None:
    """Return value as a finite Decimal, or None for missing, unparsable or infinite values."""
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _grouped(number: Decimal, min_places: int, max_places: int, *, sign: bool = False) -> str:
    """Group thousands and keep between min_places and max_places decimals, dropping trailing zeros."""
    rounded = number.quantize(Decimal(1).scaleb(-max_places), context=_ROUNDING)
    text = format(rounded, f",.{max_places}f")
    if max_places > min_places:
        head, _, tail = text.partition(".")
        tail = tail.rstrip("0").ljust(min_places, "0")
        text = f"{head}.{tail}" if tail else head
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")  # "-0.00" reads as a loss that is not there
    elif sign and number > 0:
        text = f"+{text}"
    return text


@register.filter
def money(value, places=2) -> str:
    """Format an amount with thousands separators and a fixed number of decimals: 1,234,567.89."""
    number = _number(value)
    if number is None:
        return MISSING
    places = int(places)
    return _grouped(number, places, places)


@register.filter
def pnl(value, places=2) -> str:
    """Format a profit or loss with an explicit sign: +1,234.50 or -98.00."""
    number = _number(value)
    if number is None:
        return MISSING
    places = int(places)
    return _grouped(number, places, places, sign=True)


@register.filter
def qty(value) -> str:
    """Format a quantity with only the decimals it has: 1,000 or 0.125."""
    number = _number(value)
    if number is None:
        return MISSING
    return _grouped(number, 0, 8)


@register.filter
def price(value, places=None) -> str:
    """Format a price: two to four decimals, up to eight below one; exactly `places` when given (for columns)."""
    number = _number(value)
    if number is None:
        return MISSING
    if places is not None and places != "":
        places = int(places)
        return _grouped(number, places, places)
    return _grouped(number, 2, 4 if abs(number) >= 1 else 8)


@register.filter
def fx(value) -> str:
    """Format an FX rate with up to six decimals."""
    number = _number(value)
    if number is None:
        return MISSING
    return _grouped(number, 2, 6)


@register.filter
def percent(value, places=2) -> str:
    """Format a fraction as a percentage: 0.1234 -> 12.34%."""
    number = _number(value)
    if number is None:
        return MISSING
    places = int(places)
    return f"{_grouped(number * 100, places, places)}%"


@register.filter
def percent_abs(value) -> str:
    """Return |fraction| x 100 as a plain number for a <progress> value, "0" when missing."""
    number = _number(value)
    if number is None:
        return "0"
    return f"{abs(number) * 100:.2f}"


@register.filter
def pnl_class(value) -> str:
    """Return the CSS class for a signed figure: pnl-pos, pnl-neg, or nothing for zero or missing."""
    number = _number(value)
    if number is None or number == 0:
        return ""
    return "pnl-pos" if number > 0 else "pnl-neg"
