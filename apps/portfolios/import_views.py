"""Pages for CSV imports: pick a kind, upload a file, see the preview, confirm to apply it.

The upload is stored between preview and confirmation (see imports.uploads); the session remembers,
per kind, the one pending preview and the options it was made with, so confirming applies exactly
what was previewed. Every view renders a partial when the request comes from htmx and the full page
otherwise, so the pages also work as plain form posts.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.portfolios.forms import ImportConfirmForm, ImportUploadForm
from apps.portfolios.imports import FORMATS, ImportFileError, ImportResult, csv_import
from apps.portfolios.imports.uploads import upload_discard, upload_open, upload_store

PERMISSION = "portfolios.import_data"
SESSION_KEY = "imports.pending"
ERR_PREVIEW_EXPIRED = "This preview has expired or was already applied; upload the file again."


def _format(kind: str):
    try:
        return FORMATS[kind]
    except KeyError:
        raise Http404(kind) from None


def _pending(request: HttpRequest) -> dict:
    return request.session.get(SESSION_KEY, {})


def _remember(request: HttpRequest, kind: str, entry: dict | None) -> None:
    pending = dict(_pending(request))
    previous = pending.pop(kind, None)
    if previous:
        upload_discard(token=previous["token"])
    if entry is not None:
        pending[kind] = entry
    request.session[SESSION_KEY] = pending


def _page(request: HttpRequest, kind: str, *, form=None, partial: str, context: dict) -> HttpResponse:
    context = {"format": _format(kind), "kind": kind, **context}
    if request.htmx:
        return render(request, partial, context)
    context["form"] = form or ImportUploadForm(kind=kind)
    context["panel"] = partial
    return render(request, "portfolios/imports/upload.html", context)


@require_GET
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_index(request: HttpRequest) -> HttpResponse:
    return render(request, "portfolios/imports/index.html", {"formats": list(FORMATS.values())})


@require_GET
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_sample(request: HttpRequest, kind: str) -> HttpResponse:
    response = HttpResponse(_format(kind).sample, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="riskradar-{kind}-sample.csv"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_upload(request: HttpRequest, kind: str) -> HttpResponse:
    """Show the upload form; on POST store the file, dry-run it and show the preview."""
    _format(kind)
    if request.method == "GET":
        return render(
            request,
            "portfolios/imports/upload.html",
            {"format": _format(kind), "kind": kind, "form": ImportUploadForm(kind=kind)},
        )
    form = ImportUploadForm(request.POST, request.FILES, kind=kind)
    if not form.is_valid():
        return _page(request, kind, form=form, partial="portfolios/imports/_preview.html", context={"form": form})
    data = form.cleaned_data
    options = {"partial": data["partial"], "symbol": data.get("symbol") or "", "as_of": data.get("as_of")}
    try:
        token = upload_store(file=data["file"], max_bytes=settings.IMPORT_MAX_BYTES)
    except ImportFileError as exc:
        result = ImportResult(kind=kind, dry_run=True)
        result.fail(exc.error)
        return _page(request, kind, form=form, partial="portfolios/imports/_preview.html", context={"result": result})
    with upload_open(token=token) as file:
        result = csv_import(kind=kind, file=file, dry_run=True, user=request.user, **options)
    can_apply = not result.file_error and result.changed > 0 and (result.partial or not result.rejected)
    if can_apply:
        entry = {**options, "token": token, "name": data["file"].name}
        entry["as_of"] = options["as_of"].isoformat() if options["as_of"] else ""
        _remember(request, kind, entry)
    else:
        upload_discard(token=token)
        _remember(request, kind, None)
    context = {"result": result, "token": token if can_apply else "", "file_name": data["file"].name}
    return _page(request, kind, form=form, partial="portfolios/imports/_preview.html", context=context)


@require_POST
@login_required
@permission_required(PERMISSION, raise_exception=True)
def import_apply(request: HttpRequest, kind: str) -> HttpResponse:
    """Apply the previewed upload of this session, with the options it was previewed with."""
    _format(kind)
    form = ImportConfirmForm(request.POST)
    entry = _pending(request).get(kind)
    file = None
    if form.is_valid() and entry and entry["token"] == form.cleaned_data["token"]:
        file = upload_open(token=entry["token"])
    if file is None:
        context = {"expired": ERR_PREVIEW_EXPIRED}
        return _page(request, kind, partial="portfolios/imports/_result.html", context=context)
    with file:
        result = csv_import(
            kind=kind,
            file=file,
            partial=entry["partial"],
            symbol=entry["symbol"],
            as_of=parse_datetime(entry["as_of"]) if entry["as_of"] else None,
            user=request.user,
        )
    _remember(request, kind, None)
    context = {"result": result, "file_name": entry["name"]}
    return _page(request, kind, partial="portfolios/imports/_result.html", context=context)
