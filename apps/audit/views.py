"""The audit page for Admins: the trail with filters, and its CSV export."""

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from apps.audit.filters import AuditEventFilter
from apps.audit.models import AuditAction
from apps.audit.selectors import audit_csv_rows, audit_events
from apps.audit.services import audit_record
from riskradar.pages import partial_wanted

PAGE_SIZE = 50


def _filtered(request: HttpRequest) -> AuditEventFilter:
    return AuditEventFilter(request.GET, queryset=audit_events())


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
@require_GET
def audit_log_page(request: HttpRequest) -> HttpResponse:
    """The trail, newest first, filtered; the table alone for htmx."""
    filterset = _filtered(request)
    events = filterset.qs if filterset.is_valid() else audit_events().none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filter": filterset,
        "page_obj": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "actions": AuditAction.choices,
        "chosen_actions": request.GET.getlist("action"),
    }
    template = "audit/_table.html" if partial_wanted(request) else "audit/log.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
@require_GET
def audit_log_export(request: HttpRequest) -> HttpResponse:
    """The filtered trail as CSV, streamed; the export itself is recorded first."""
    filterset = _filtered(request)
    if not filterset.is_valid():
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in filterset.errors.items())
        return HttpResponseBadRequest(f"Nothing exported. {problems}", content_type="text/plain")
    events = filterset.qs
    audit_record(
        action=AuditAction.EXPORT,
        object_type="audit.auditevent",
        object_repr="audit trail (CSV)",
        detail={"filters": {key: request.GET.getlist(key) for key in request.GET}, "rows": events.count()},
    )
    response = StreamingHttpResponse(audit_csv_rows(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="riskradar-audit-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response
