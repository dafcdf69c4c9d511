"""Recording audit events: audit_record() (or audit_record_many() for a batch) appends to the hash chain inside
the caller's transaction; auditlog_changes_record() writes django-auditlog entries for bulk writes it cannot see."""

import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal

from auditlog.cid import get_cid
from auditlog.context import auditlog_disabled, auditlog_value
from auditlog.diff import get_field_value, model_instance_diff, track_field
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import setting_changed
from django.db import IntegrityError, models, transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.encoding import smart_str

from apps.audit import chain
from apps.audit.context import client_ip, current_request, user_agent
from apps.audit.models import AuditChainHead, AuditEvent
from riskradar.bulk import values_insert

WRITE_BATCH = 500  # events per INSERT of a batch


def _plain(value):
    """JSON types only, exactly as the database will give them back (so the hash can be recomputed)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False, default=str))


def _lock_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(pk=1, seq=0, hash=chain.GENESIS)
    except IntegrityError:
        pass  # created by a concurrent writer
    return AuditChainHead.objects.select_for_update().get(pk=1)


def _signed_in_user(request):
    """Return the signed-in user of `request`, or None (no request, or an anonymous one)."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _event_fields(
    *,
    action: str,
    actor=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before=None,
    after=None,
    detail: dict | None = None,
    request=None,
    at=None,
) -> dict:
    request = request if request is not None else current_request()
    if actor is None:
        actor = _signed_in_user(request)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    return {
        "at": at or timezone.now(),
        "actor_id": actor.pk if actor is not None else None,
        "actor_name": actor.get_username() if actor is not None else "",
        "action": action,
        "object_type": object_type[:100],
        "object_id": str(object_id)[:64],
        "object_repr": object_repr[:200],
        "before": _plain(before),
        "after": _plain(after),
        "detail": _plain(detail) or {},
        "ip": client_ip(request),
        "user_agent": user_agent(request),
    }


def audit_record(*, action: str, **details) -> AuditEvent:
    """Append an event to the chain and return it.

    `details` are those of _event_fields: `actor` (default: the signed-in user of the request being served,
    or none: the platform itself), `obj` (fills object_type, object_id and object_repr from a model
    instance, or give those), `before`, `after`, `detail`, and `request` (default: the request being served,
    for the IP and user agent). Runs inside the caller's transaction when there is one, so an action that
    is rolled back leaves no event; appends are serialised on the chain head's row lock.
    """
    return _append([_event_fields(action=action, **details)])[0]


def audit_record_many(events: Iterable[dict]) -> int:
    """Append a batch of events, each given as audit_record's keyword arguments, in order; return how many.

    The same chain as one audit_record() call per event, at a fixed number of queries whatever the size of
    the batch: the head is locked once, the events are inserted in bulk and the head moves once. The
    events share one time. Runs inside the caller's transaction, as audit_record() does.
    """
    at = timezone.now()
    return len(_append([_event_fields(**event, at=at) for event in events]))


def _append(built: list[dict]) -> list[AuditEvent]:
    """Chain the events after the head, in order, and store them; the head's row lock serialises appends."""
    if not built:
        return []
    with transaction.atomic():
        head = _lock_head()
        rows = []
        for fields in built:
            seq = head.seq + 1
            digest = chain.content_hash(chain.event_content(seq=seq, prev_hash=head.hash, **fields))
            rows.append(AuditEvent(seq=seq, prev_hash=head.hash, hash=digest, **fields))
            head.seq, head.hash = seq, digest
        AuditEvent.objects.bulk_create(rows, batch_size=WRITE_BATCH)
        head.save(update_fields=["seq", "hash"])
    return rows


def _auditlog_context() -> dict:
    """Return what auditlog's set_actor() or middleware holds now, or {} outside them.

    set_actor() leaves its value in the context variable when it exits and only disconnects the receiver it
    connected, so the value holds only while that receiver (keyed by the value's signal_duid) is connected.
    """
    context = auditlog_value.get({})
    duid = context.get("signal_duid")
    if duid is None or not any(key[0] == duid for key, *_ in pre_save.receivers):
        return {}
    return context


def _diff(old, new, json_changes: bool | None = None) -> dict | None:
    """model_instance_diff(old, new), comparing the model's fields with _field_reader's readers.

    Masked fields, JSON-valued changes and include/exclude lists take auditlog's own path. `json_changes` as
    for _creation_diff.
    """
    if json_changes is None:
        json_changes = settings.AUDITLOG_STORE_JSON_CHANGES
    model = type(new)
    registered = auditlog.get_model_fields(model) if old is not None and type(old) is model else None
    if (
        registered is None
        or json_changes
        or registered["mask_fields"]
        or registered["include_fields"]
        or registered["exclude_fields"]
    ):
        return model_instance_diff(old, new, use_json_for_changes=json_changes)
    diff = {}
    for name, read in _update_readers(model):
        before, after = read(old), read(new)
        if before != after:
            diff[name] = (_text(before), _text(after))
    return diff or None


# Types whose smart_str is str(): most of what a batch's entries hold, turned into text without its checks.
_PLAIN_TYPES = frozenset({int, float, bool, Decimal, dt.datetime, dt.date, dt.time, uuid.UUID})


def _text(value) -> str:
    """smart_str(value), the text auditlog stores for a value."""
    return value if type(value) is str else str(value) if type(value) in _PLAIN_TYPES else smart_str(value)


def _field_reader(field) -> Callable[[models.Model], object]:
    """Return a function giving auditlog's get_field_value(obj, field) (not for JSON changes), for one field.

    The same value, read without get_field_value's checks on every call (a batch reads ~90,000 values): a
    plain column's value as text, a foreign key's id, an aware time as naive UTC. Any other field (JSON,
    reverse relations, a time field whose value is not a datetime) is read by get_field_value itself.
    """
    if isinstance(field, models.JSONField) or not getattr(field, "concrete", False):
        return functools.partial(get_field_value, field=field)
    if isinstance(field, models.DateTimeField):
        if type(field).to_python is not models.DateTimeField.to_python:
            return functools.partial(get_field_value, field=field)
        name, use_tz = field.name, settings.USE_TZ  # read once: the lazy settings object is slow per call

        def read_time(obj):
            value = getattr(obj, name)
            if type(value) is not dt.datetime:
                return get_field_value(obj, field)
            if use_tz and value.utcoffset() is not None:
                return value.astimezone(dt.UTC).replace(tzinfo=None)
            return value

        return read_time
    if field.is_relation:
        if settings.AUDITLOG_USE_FK_STRING_REPRESENTATION or not (field.one_to_one or field.many_to_one):
            return functools.partial(get_field_value, field=field)
        attname = field.get_attname()

        def read_key(obj):
            value = getattr(obj, attname)
            return value if value is None or type(value) in (int, str) else smart_str(value, strings_only=True)

        return read_key
    name = field.name

    def read_value(obj):
        value = getattr(obj, name)
        if type(value) is str:
            return value
        value = _text(value)
        return str(value) if type(value).__name__ == "__proxy__" else value

    return read_value


@functools.cache
def _creation_readers(model) -> tuple:
    """(name, reader) of the fields model_instance_diff compares for a created row, with its registration's filters."""
    fields = [f for f in model._meta.get_fields() if track_field(f)]
    registered = auditlog.get_model_fields(model)
    if registered["include_fields"]:
        fields = [f for f in fields if f.name in registered["include_fields"]]
    if registered["exclude_fields"]:
        fields = [f for f in fields if f.name not in registered["exclude_fields"]]
    return tuple((f.name, _field_reader(f)) for f in fields)


@functools.cache
def _update_readers(model) -> tuple:
    """(name, reader) of the fields model_instance_diff compares for an updated row, in its order (a set of the
    model's fields: it takes the set of both rows' fields, the same fields)."""
    fields = set(model._meta.fields)
    return tuple((f.name, _field_reader(f)) for f in fields)


@receiver(setting_changed)
def _readers_forget(*, setting, **kwargs) -> None:
    """The readers hold settings read when they were made (tests override them)."""
    if setting in ("USE_TZ", "AUDITLOG_USE_FK_STRING_REPRESENTATION"):
        _creation_readers.cache_clear()
        _update_readers.cache_clear()


def _creation_diff(new, json_changes: bool | None = None) -> dict | None:
    """model_instance_diff(None, new), with the fields and their readers worked out once per model.

    Masked fields and JSON-valued changes take the general path. `json_changes` is
    settings.AUDITLOG_STORE_JSON_CHANGES, read once by a caller diffing thousands of rows.
    """
    if json_changes is None:
        json_changes = settings.AUDITLOG_STORE_JSON_CHANGES
    model = type(new)
    if json_changes or auditlog.get_model_fields(model)["mask_fields"]:
        return model_instance_diff(None, new, use_json_for_changes=json_changes)
    diff = {}
    for name, read in _creation_readers(model):
        value = read(new)
        if value != "None":  # what a missing old row gives (the string), compared as model_instance_diff does
            diff[name] = ("None", _text(value))
    return diff or None


def auditlog_changes_record(
    *, changes: Iterable[tuple[models.Model | None, models.Model | None]], actor=None, additional_data=None
) -> int:
    """Write django-auditlog entries for rows written in bulk, which its signals never see; return how many.

    `changes` holds (before, after) pairs of instances of one or more registered models: (None, row) for a
    row created, (row, None) for one deleted, (old, new) for one updated; an update that changes no
    audited field is skipped, as auditlog skips it. Fields are compared and masked as auditlog's own
    receivers do (model_instance_diff with the model's registration). The actor is `actor`, else the one
    auditlog's middleware or set_actor() holds, else the signed-in user of the request being served; the
    address comes from the same place. Written with riskradar.bulk.values_insert, in the caller's transaction.
    """
    if auditlog_disabled.get():
        return 0
    context = _auditlog_context()
    request = current_request()
    if actor is None:
        actor = context.get("actor") or _signed_in_user(request)
    remote_addr = context.get("remote_addr") or client_ip(request)
    cid = get_cid()
    now = timezone.now()
    json_changes = settings.AUDITLOG_STORE_JSON_CHANGES
    entries = []
    content_types: dict[type, int] = {}
    for old, new in changes:
        instance = new if new is not None else old
        if instance is None or not auditlog.contains(instance._meta.model):
            continue
        diff = _creation_diff(new, json_changes) if old is None else _diff(old, new, json_changes)
        if not diff:
            continue
        action = (
            LogEntry.Action.CREATE if old is None else LogEntry.Action.DELETE if new is None else LogEntry.Action.UPDATE
        )
        pk = instance.pk
        model = type(instance)
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(instance).pk
        entries.append(
            {
                "content_type_id": content_types[model],
                "object_pk": smart_str(pk),
                "object_id": pk if isinstance(pk, int) else None,
                "object_repr": smart_str(instance),
                "action": action,
                "changes": diff,
                "actor_id": actor.pk if actor is not None else None,
                "actor_email": getattr(actor, "email", None) if actor is not None else None,
                "remote_addr": remote_addr,
                "remote_port": context.get("remote_port"),
                "cid": cid,
                "timestamp": now,
                "additional_data": additional_data,
            }
        )
    values_insert(LogEntry, entries)
    return len(entries)


def audit_verify() -> chain.ChainReport:
    """Walk the whole chain, oldest first, in pages; name the first broken link."""
    head = AuditChainHead.objects.filter(pk=1).first()

    def events():
        last = 0
        while True:
            page = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:2000])
            if not page:
                return
            yield from page
            last = page[-1].seq

    return chain.verify(events(), head_seq=head.seq if head else 0, head_hash=head.hash if head else None)
