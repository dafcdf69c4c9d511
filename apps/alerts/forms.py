"""Forms of the alert pages: inbox filters, resolving, rules with their parameters, dry runs, limit increases.

They parse and present; the services validate and store (apps.alerts.services), and their errors are put
back on the field they name (`form_errors_from`).
"""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.alerts.models import (
    LIMIT_KINDS,
    AlertRule,
    AlertSeverity,
    AlertStatus,
    Disposition,
    LimitFigure,
    NotificationChannel,
    RuleKind,
    Scope,
)
from apps.alerts.parameters import BASIS_FIGURES, SCHEMAS, parameters_default
from apps.market.models import Instrument
from apps.portfolios.models import Portfolio

SMALL_INPUT = "form-control form-control-sm"
SMALL_SELECT = "form-select form-select-sm"
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"

STATUS_ACTIVE = "active"
STATUS_ANY = "all"
STATUS_CHOICES = [
    (STATUS_ACTIVE, "Open or acknowledged"),
    (AlertStatus.OPEN, "Open"),
    (AlertStatus.ACKNOWLEDGED, "Acknowledged"),
    (AlertStatus.RESOLVED, "Resolved"),
    (STATUS_ANY, "Any status"),
]
PARAM_PREFIX = "param_"
MAX_DRY_RUN = dt.timedelta(days=366)
DEFAULT_DRY_RUN = dt.timedelta(days=30)

ERR_DRY_RUN_ORDER = "Since must be before until."
ERR_DRY_RUN_LONG = f"A dry run covers at most {MAX_DRY_RUN.days} days."
ERR_DRY_RUN_FUTURE = "Until cannot be in the future."


class DateTimeLocalInput(forms.DateTimeInput):
    """<input type="datetime-local">, read and shown in the user's time zone (the active one)."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_LOCAL)


def _local_field(**kwargs) -> forms.DateTimeField:
    return forms.DateTimeField(
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=DateTimeLocalInput(attrs={"class": SMALL_INPUT}),
        **kwargs,
    )


def mark_invalid(form: forms.BaseForm) -> None:
    """Add Bootstrap's is-invalid to the widgets of fields with errors."""
    for name in form.errors:
        if name in form.fields:
            widget = form.fields[name].widget
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


def form_errors_from(form: forms.BaseForm, exc: ValidationError, *, field_map: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form: each message on the field it names, others on the form.

    Parameter messages ("hard: must be greater than 0.") go on that parameter's own field when the form has one.
    """
    field_map = field_map or {}
    items = exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    for field, messages in items:
        for message in messages:
            name = field_map.get(field, field)
            if field == "parameters":
                param, sep, rest = message.partition(": ")
                if sep and f"{PARAM_PREFIX}{param}" in form.fields:
                    form.add_error(f"{PARAM_PREFIX}{param}", rest)
                    continue
            form.add_error(name if name in form.fields else None, message)
    mark_invalid(form)


# ------------------------------------------------------------------------------ inbox


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *reversed(AlertSeverity.choices)], required=False)
    rule = forms.ModelChoiceField(queryset=AlertRule.objects.order_by("name"), required=False, empty_label="Any rule")
    portfolio = forms.ModelChoiceField(
        queryset=Portfolio.objects.order_by("code"), to_field_name="code", required=False, empty_label="Any portfolio"
    )
    since = _local_field(required=False, label="Seen since")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("class", SMALL_SELECT if name != "since" else SMALL_INPUT)
            field.widget.attrs["id"] = f"alert-filter-{name}"
        self.fields["portfolio"].label_from_instance = lambda p: f"{p.code} · {p.name}"

    def filters(self) -> dict:
        """Return the selector's keyword arguments (status "active" means open or acknowledged)."""
        data = self.cleaned_data
        status = data.get("status") or STATUS_ACTIVE
        statuses = {STATUS_ACTIVE: [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED], STATUS_ANY: None}.get(status, status)
        return {
            "status": statuses,
            "severity": data.get("severity") or None,
            "rule_id": data["rule"].pk if data.get("rule") else None,
            "portfolio_id": data["portfolio"].pk if data.get("portfolio") else None,
            "since": data.get("since"),
        }


class ResolveForm(forms.Form):
    disposition = forms.ChoiceField(choices=Disposition.choices, widget=forms.RadioSelect, required=False)
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "class": SMALL_INPUT, "placeholder": "What was found, what was done"}),
    )


# ------------------------------------------------------------------------------ rules


def _param_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def parameter_fields(kind: str) -> dict[str, forms.Field]:
    """Return one form field per parameter of the kind (param_<name>), each with the parameter's help."""
    fields: dict[str, forms.Field] = {}
    for name, param in SCHEMAS.get(kind, {}).items():
        label, help_text = _param_label(name), param.help
        if param.type == "choice":
            choices = [(c, LimitFigure(c).label if name == "figure" else c) for c in param.choices]
            field = forms.ChoiceField(choices=choices, required=False, label=label, help_text=help_text)
            field.widget.attrs["class"] = SMALL_SELECT
        elif param.type == "boolean":
            field = forms.BooleanField(required=False, label=label, help_text=help_text)
            field.widget.attrs["class"] = "form-check-input"
        else:
            hint = "required" if param.required else "default" if param.default is None else f"default {param.default}"
            field = forms.CharField(required=False, label=label, help_text=help_text, max_length=40)
            field.widget.attrs.update({"class": SMALL_INPUT, "inputmode": "decimal", "placeholder": hint})
            if param.type == "currency":
                field.widget.attrs.update({"inputmode": "text", "maxlength": "3"})
        fields[f"{PARAM_PREFIX}{name}"] = field
    return fields


class AlertRuleForm(forms.ModelForm):
    """A rule's fields, and its kind's parameters as fields of their own (param_<name>).

    `rule_data()` returns what alert_rule_create / alert_rule_update take; empty parameters are left out, so
    they take their default (none, for an optional level).
    """

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "description",
            "kind",
            "enabled",
            "scope",
            "scope_portfolio",
            "scope_instrument",
            "scope_asset_class",
            "severity",
            "cooldown",
            "auto_resolve",
            "channels",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "channels": forms.CheckboxSelectMultiple,
        }
        help_texts = {"cooldown": "Silence after a resolved alert of the same subject (HH:MM:SS)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope_portfolio"].queryset = Portfolio.objects.filter(is_active=True).order_by("code")
        self.fields["scope_instrument"].queryset = Instrument.objects.filter(is_active=True).order_by("symbol")
        self.fields["channels"].queryset = NotificationChannel.objects.order_by("name")
        self.fields["channels"].required = False
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
                widget.attrs["class"] = "form-check-input"
            elif isinstance(widget, forms.Select):
                widget.attrs["class"] = SMALL_SELECT
            else:
                widget.attrs["class"] = SMALL_INPUT
            widget.attrs["id"] = f"rule-{name.replace('_', '-')}"
        self.fields["channels"].widget.attrs["id"] = "rule-channel"  # each box gets _0, _1 ...
        self.kind = self._chosen_kind()
        current = dict(self.instance.parameters or {}) if self.instance.pk and self.instance.kind == self.kind else {}
        initial = {**parameters_default(self.kind), **current} if self.kind else {}
        for name, field in parameter_fields(self.kind).items():
            value = initial.get(name.removeprefix(PARAM_PREFIX))
            field.initial = "" if value is None else value
            field.widget.attrs["id"] = f"rule-{name.replace('_', '-')}"
            self.fields[name] = field

    def _chosen_kind(self) -> str:
        kind = self.data.get("kind") if self.is_bound else None
        kind = kind or self.initial.get("kind") or self.instance.kind or RuleKind.RISK_LIMIT
        return kind if kind in SCHEMAS else RuleKind.RISK_LIMIT

    @property
    def parameter_bound_fields(self) -> list:
        return [self[name] for name in self.fields if name.startswith(PARAM_PREFIX)]

    @property
    def rule_bound_fields(self) -> list:
        return [self[name] for name in self.fields if not name.startswith(PARAM_PREFIX)]

    def clean(self):
        data = super().clean()
        # Only the chosen scope's own field is kept: the others may hold a value left from another choice.
        own = {Scope.PORTFOLIO: "scope_portfolio", Scope.INSTRUMENT: "scope_instrument", Scope.ASSET_CLASS: ""}
        scope = data.get("scope")
        for name in ("scope_portfolio", "scope_instrument"):
            if own.get(scope) != name:
                data[name] = None
        if scope != Scope.ASSET_CLASS:
            data["scope_asset_class"] = ""
        return data

    # Model validation is the service's (it names each parameter); the form only parses.
    def _post_clean(self):
        pass

    def parameters(self) -> dict:
        """Return the parameters given, as the service validates them (numbers as the text typed)."""
        params = {}
        for name, param in SCHEMAS.get(self.kind, {}).items():
            value = self.cleaned_data.get(f"{PARAM_PREFIX}{name}")
            if param.type == "boolean":
                params[name] = bool(value)
            elif value not in (None, ""):
                params[name] = value.strip() if isinstance(value, str) else value
        if self.kind == RuleKind.RISK_LIMIT and params.get("figure") not in BASIS_FIGURES:
            params.pop("basis", None)  # only VaR and ES limits have a basis
        return params

    def rule_data(self) -> dict:
        data = {name: self.cleaned_data.get(name) for name in self.Meta.fields}
        data["channels"] = list(data["channels"] or [])
        data["parameters"] = self.parameters()
        data["description"] = data.get("description") or ""
        return data

    def unsaved_rule(self) -> AlertRule:
        """Return the rule as edited, unsaved (for a dry run): with the edited rule's id, so its increases apply."""
        data = self.rule_data()
        data.pop("channels")
        rule = AlertRule(pk=self.instance.pk, **data)
        return rule


class DryRunForm(forms.Form):
    since = _local_field(label="Since")
    until = _local_field(label="Until")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        now = timezone.localtime().replace(second=0, microsecond=0)
        self.fields["since"].initial = now - DEFAULT_DRY_RUN
        self.fields["until"].initial = now
        self.fields["since"].widget.attrs["id"] = "dry-run-since"
        self.fields["until"].widget.attrs["id"] = "dry-run-until"

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until:
            if since >= until:
                self.add_error("since", ERR_DRY_RUN_ORDER)
            elif until - since > MAX_DRY_RUN:
                self.add_error("since", ERR_DRY_RUN_LONG)
            elif until > timezone.now() + dt.timedelta(minutes=1):
                self.add_error("until", ERR_DRY_RUN_FUTURE)
        mark_invalid(self)
        return data


# ------------------------------------------------------------------------------ limit increases


class LimitIncreaseRequestForm(forms.Form):
    rule = forms.ModelChoiceField(queryset=AlertRule.objects.none(), empty_label="Choose a limit rule")
    portfolio = forms.ModelChoiceField(
        queryset=Portfolio.objects.filter(is_active=True).order_by("code"),
        to_field_name="code",
        required=False,
        empty_label="Every portfolio the rule covers",
    )
    new_soft = forms.CharField(required=False, max_length=40, label="New soft level")
    new_hard = forms.CharField(required=False, max_length=40, label="New hard level")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), required=False)
    expires_at = _local_field(label="Expires", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule"].queryset = AlertRule.objects.filter(kind__in=LIMIT_KINDS).order_by("kind", "name")
        self.fields["portfolio"].label_from_instance = lambda p: f"{p.code} · {p.name}"
        self.fields["expires_at"].initial = timezone.localtime().replace(second=0, microsecond=0) + dt.timedelta(days=1)
        for name, field in self.fields.items():
            if isinstance(field.widget, forms.Select):
                field.widget.attrs["class"] = SMALL_SELECT
            else:
                field.widget.attrs.setdefault("class", SMALL_INPUT)
            field.widget.attrs["id"] = f"increase-{name.replace('_', '-')}"
        for name in ("new_soft", "new_hard"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "placeholder": "unchanged"})
        self.fields["rule"].label_from_instance = self._rule_label

    @staticmethod
    def _rule_label(rule: AlertRule) -> str:
        params = rule.parameters or {}
        levels = ", ".join(f"{k} {params[k]}" for k in ("soft", "hard") if params.get(k) is not None)
        return f"{rule.name} ({levels})" if levels else rule.name


class IncreaseDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("refuse", "Refuse"), ("cancel", "Withdraw")])
    note = forms.CharField(required=False, max_length=2000)
