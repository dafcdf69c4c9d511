"""POST /api/v1/imports/{kind}: the CSV imports over HTTP, answering with the same result as the pages."""

import datetime as dt

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasPerm
from apps.portfolios.imports import ImportKind, ImportResult, ImportStatus, LineError, csv_import


class ImportUploadSerializer(serializers.Serializer):
    # An empty file reaches the import, which reports it like every other unusable file.
    file = serializers.FileField(allow_empty_file=True, help_text="The CSV file, UTF-8 with or without BOM.")
    partial = serializers.BooleanField(
        default=False, help_text="Apply the valid rows and report the rejected ones (default: all or nothing)."
    )
    dry_run = serializers.BooleanField(default=False, help_text="Report what would change; write nothing.")
    symbol = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=40,
        help_text="prices only: the instrument of a one-symbol vendor file (Date,Open,High,Low,Close,...).",
    )
    # Naive times are read as UTC, as everywhere in the imports, not in the caller's display zone.
    as_of = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        default_timezone=dt.UTC,
        help_text="positions only: when the positions take effect (ISO 8601; default now; no zone = UTC).",
    )


class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="Line in the file (header = 1); null: whole file.")
    column = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ChangeSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    action = serializers.ChoiceField(choices=["create", "update"])
    key = serializers.CharField()
    detail = serializers.CharField(allow_blank=True)


class ImportResultSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k.value for k in ImportKind])
    status = serializers.ChoiceField(
        choices=[s.value for s in ImportStatus],
        help_text="applied: written; preview: dry run; rejected: nothing written.",
    )
    dry_run = serializers.BooleanField()
    partial = serializers.BooleanField()
    applied = serializers.BooleanField()
    file_error = serializers.BooleanField(help_text="The file as a whole was unusable (encoding, size, header).")
    rows = serializers.IntegerField(help_text="Data lines read.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField(help_text="Lines rejected.")
    errors = LineErrorSerializer(many=True)
    errors_truncated = serializers.BooleanField(help_text="More errors than the report lists (the counts are exact).")
    changes = ChangeSerializer(many=True, help_text="The first lines that create or update something.")
    notes = serializers.ListField(child=serializers.CharField())


def _request_errors(kind: str, errors: dict) -> ImportResult:
    """Report a malformed request (no file, a bad flag) in the same shape as a refused file."""
    result = ImportResult(kind=kind)
    lines = [LineError(None, field, str(message)) for field, messages in errors.items() for message in messages]
    result.fail(lines[0])
    result.errors = lines
    return result


def _status_code(result: ImportResult) -> int:
    """201 when something was written, 400 when the file or (all-or-nothing) a line was refused, else 200."""
    if result.file_error:
        return status.HTTP_400_BAD_REQUEST
    if result.dry_run:
        return status.HTTP_200_OK
    if not result.applied or (result.rejected and result.rejected == result.rows):
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_201_CREATED if result.changed else status.HTTP_200_OK


class ImportView(APIView):
    """Import a CSV file of instruments, prices, positions or trades."""

    permission_classes = [IsAuthenticated, HasPerm("portfolios.import_data")]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="imports_create",
        summary="Import a CSV file",
        description=(
            "Validates the whole file, then applies it in one transaction. All or nothing by default: one bad "
            "line and nothing is written (400, every error listed by line). With partial=true the valid lines "
            "are applied and each rejected line reported. dry_run=true reports what would change. Importing "
            "the same file again changes nothing (200, all unchanged)."
        ),
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=[k.value for k in ImportKind])
        ],
        request={"multipart/form-data": ImportUploadSerializer},
        responses={
            200: OpenApiResponse(ImportResultSerializer, description="Dry run, or applied with nothing to change."),
            201: OpenApiResponse(ImportResultSerializer, description="Applied; something was created or updated."),
            400: OpenApiResponse(
                ImportResultSerializer,
                description="Rejected (the file, a line, or the request itself); nothing written.",
            ),
        },
        tags=["imports"],
    )
    def post(self, request: Request, kind: str) -> Response:
        serializer = ImportUploadSerializer(data=request.data)
        if not serializer.is_valid():
            return Response(ImportResultSerializer(_request_errors(kind, serializer.errors)).data, status=400)
        data = serializer.validated_data
        result = csv_import(
            kind=kind,
            file=data["file"],
            partial=data["partial"],
            dry_run=data["dry_run"],
            symbol=data["symbol"],
            as_of=data["as_of"],
            user=request.user,
        )
        return Response(ImportResultSerializer(result).data, status=_status_code(result))
