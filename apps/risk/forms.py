"""Forms of the risk pages: a hypothetical trade (what-if), a backtest's settings and a stress scenario."""

from django import forms

from apps.portfolios.models import Side
from apps.risk.models import StressScenario
from apps.risk.services import SCENARIO_FIELDS

SMALL_INPUT = "form-control form-control-sm"


class WhatIfForm(forms.Form):
    symbol = forms.CharField(
        max_length=40, widget=forms.TextInput(attrs={"placeholder": "e.g. RELIANCE.NS", "class": SMALL_INPUT})
    )
    side = forms.ChoiceField(choices=Side.choices, widget=forms.Select(attrs={"class": "form-select form-select-sm"}))
    quantity = forms.DecimalField(widget=forms.NumberInput(attrs={"step": "any", "class": SMALL_INPUT}))
    price = forms.DecimalField(
        required=False,
        widget=forms.NumberInput(attrs={"step": "any", "placeholder": "latest", "class": SMALL_INPUT}),
        help_text="Leave empty for the latest price.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()

    def clean_symbol(self) -> str:
        return self.cleaned_data["symbol"].strip().upper()


class BacktestForm(forms.Form):
    window = forms.TypedChoiceField(choices=[(250, "250 d"), (125, "125 d"), (60, "60 d")], coerce=int, initial=250)
    observations = forms.TypedChoiceField(
        choices=[(250, "250 d"), (125, "125 d"), (60, "60 d")], coerce=int, initial=250
    )
    confidence = forms.TypedChoiceField(
        choices=[(0.99, "99%"), (0.975, "97.5%"), (0.95, "95%")], coerce=float, initial=0.99
    )


class StressScenarioForm(forms.ModelForm):
    """A scenario's fields; the service validates and stores them (see stress_scenario_create/update)."""

    class Meta:
        model = StressScenario
        fields = list(SCENARIO_FIELDS)
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "currency_moves": forms.Textarea(attrs={"rows": 2, "class": "font-monospace"}),
            "symbol_moves": forms.Textarea(attrs={"rows": 2, "class": "font-monospace"}),
        }
        help_texts = {
            "currency_moves": 'Currency moves against all others, e.g. {"INR": -0.1}. Empty: {}.',
            "symbol_moves": 'Single-series moves, e.g. {"BTC-USD": -0.3}. Empty: {}.',
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if not isinstance(field.widget, forms.CheckboxInput):
                field.widget.attrs["class"] = f"form-control {field.widget.attrs.get('class', '')}".strip()
