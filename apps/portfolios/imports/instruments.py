"""Instrument import: create or update instruments by symbol, validated by the model's full_clean."""

import re
from decimal import Decimal
from typing import BinaryIO

from apps.market.models import AssetClass, Instrument, OptionType
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.common import CellReader, RowError, apply_rows, open_table, parse_rows
from apps.portfolios.imports.formats import INSTRUMENT_OPTIONAL, INSTRUMENT_REQUIRED
from apps.portfolios.imports.reading import (
    CellError,
    parse_bool,
    parse_choice,
    parse_date,
    parse_optional_decimal,
)
from apps.portfolios.imports.result import Action, ImportResult

INTEGER_RE = re.compile(r"\d+")
# The fields an import sets, in file order; "underlying" is compared by id.
FIELDS = [c for c in INSTRUMENT_REQUIRED + INSTRUMENT_OPTIONAL if c != "symbol"]


def _optional_date(value: str):
    return parse_date(value) if value else None


def _optional_option_type(value: str) -> str:
    if not value:
        return ""
    for stored, label in OptionType.choices:
        if value.lower() in (stored.lower(), label.lower()):
            return stored
    raise CellError(E.ERR_CHOICE.format(value=value, choices="C, P"))


def _optional_integer(value: str) -> int | None:
    if not value:
        return None
    if not INTEGER_RE.fullmatch(value) or int(value) > 32767:
        raise CellError(E.ERR_INTEGER.format(value=value))
    return int(value)


def _parse(cells: CellReader) -> dict:
    """Return the row's field values, only for the columns the file has (others keep their stored value)."""
    fields: dict = {"symbol": cells.text("symbol").upper(), "name": cells.text("name")}
    fields["asset_class"] = cells.parse("asset_class", parse_choice, choices=AssetClass.choices)
    fields["currency"] = cells.text("currency").upper()
    if cells.has("exchange"):
        fields["exchange"] = cells.text("exchange")
    if cells.has("multiplier"):
        multiplier = cells.parse("multiplier", parse_optional_decimal, positive=True, limit=Decimal("1e12"))
        fields["multiplier"] = multiplier if multiplier is not None else Decimal("1")
    if cells.has("underlying"):
        fields["underlying"] = cells.text("underlying").upper()
    if cells.has("option_type"):
        fields["option_type"] = cells.parse("option_type", _optional_option_type)
    for column in ("strike", "face_value"):
        if cells.has(column):
            fields[column] = cells.parse(column, parse_optional_decimal, positive=True)
    if cells.has("coupon_rate"):
        fields["coupon_rate"] = cells.parse("coupon_rate", parse_optional_decimal, places=6, limit=Decimal("1000"))
    if cells.has("coupon_frequency"):
        fields["coupon_frequency"] = cells.parse("coupon_frequency", _optional_integer)
    for column in ("expiry", "maturity"):
        if cells.has(column):
            fields[column] = cells.parse(column, _optional_date)
    if cells.has("is_active"):
        fields["is_active"] = cells.parse("is_active", parse_bool, default=True)
    if not fields["symbol"]:
        cells.fail("symbol", E.ERR_REQUIRED)
    return fields


def _snapshot(instrument: Instrument) -> dict:
    return {f: getattr(instrument, "underlying_id" if f == "underlying" else f) for f in FIELDS}


def _apply(fields: dict) -> tuple[str, str, str]:
    symbol = fields["symbol"]
    instrument = Instrument.objects.filter(symbol=symbol).first()
    before = _snapshot(instrument) if instrument is not None else None
    if instrument is None:
        instrument = Instrument(symbol=symbol)
    errors: list[tuple[str, str]] = []
    for field, value in fields.items():
        if field == "underlying":
            # Looked up inside the import transaction, so an underlying created on an earlier line is found.
            underlying_id = None
            if value:
                underlying_id = Instrument.objects.filter(symbol=value).values_list("id", flat=True).first()
                if underlying_id is None:
                    errors.append(("underlying", E.ERR_UNKNOWN_UNDERLYING.format(symbol=value)))
            instrument.underlying_id = underlying_id
        elif field != "symbol":
            setattr(instrument, field, value)
    if errors:
        raise RowError(errors)
    instrument.full_clean()
    if before is not None:
        changed = [f for f, old in _snapshot(instrument).items() if old != before[f]]
        if not changed:
            return Action.UNCHANGED, symbol, ""
        instrument.save()
        return Action.UPDATE, symbol, "changed " + ", ".join(changed)
    instrument.save()
    return Action.CREATE, symbol, f"{instrument.get_asset_class_display()} {instrument.currency}"


def instruments_import(*, file: BinaryIO, result: ImportResult, max_bytes: int) -> None:
    """Create or update the instruments of a CSV file by symbol (see formats.FORMATS for the columns)."""
    table = open_table(file, max_bytes=max_bytes, required=INSTRUMENT_REQUIRED, optional=INSTRUMENT_OPTIONAL)
    items = parse_rows(table=table, result=result, parse_one=_parse, key=lambda f: f["symbol"], what="symbol")
    apply_rows(result=result, items=items, apply_one=_apply)
