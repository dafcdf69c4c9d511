"""Forms of the portfolios pages: the CSV import upload and its confirmation."""

from django import forms
from django.conf import settings

from apps.portfolios.imports import ImportKind
from apps.portfolios.imports import errors as E
from apps.portfolios.imports.uploads import TOKEN_RE


class ImportUploadForm(forms.Form):
    """Choose a CSV file and how to import it; the fields shown depend on the kind."""

    file = forms.FileField(label="CSV file", help_text="UTF-8, with or without BOM.", allow_empty_file=True)
    partial = forms.BooleanField(
        required=False,
        label="Apply the valid rows and reject the others",
        help_text="Off: one bad row and nothing is imported (every error is listed).",
    )
    symbol = forms.CharField(
        required=False,
        max_length=40,
        label="Symbol",
        help_text="Only for a one-symbol vendor file (Date,Open,High,Low,Close,Adj Close,Volume).",
    )
    as_of = forms.DateTimeField(
        required=False,
        label="As of",
        help_text="When the positions take effect, in your time zone; empty means now.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, kind: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if kind != ImportKind.PRICES:
            del self.fields["symbol"]
        if kind != ImportKind.POSITIONS:
            del self.fields["as_of"]
        for name, field in self.fields.items():
            css = "form-check-input" if name == "partial" else "form-control"
            field.widget.attrs.setdefault("class", css)
        self.fields["file"].widget.attrs["accept"] = ".csv,text/csv"

    def clean_file(self):
        file = self.cleaned_data["file"]
        # Checked here as well as in the service so an oversized upload is refused before it is stored.
        if file.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(E.ERR_TOO_LARGE.format(limit=settings.IMPORT_MAX_BYTES))
        return file

    def clean_symbol(self) -> str:
        return self.cleaned_data.get("symbol", "").strip().upper()


class ImportConfirmForm(forms.Form):
    """Apply the import previewed under this token."""

    token = forms.RegexField(regex=rf"^{TOKEN_RE.pattern}\Z", widget=forms.HiddenInput)
