"""Recording audit events: one call, audit_record(), appends to the hash chain inside the caller's transaction."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit import chain
from apps.audit.context import client_ip, current_request, user_agent
from apps.audit.models import AuditChainHead, AuditEvent


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


def audit_record(
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
) -> AuditEvent:
    """Append an event to the chain and return it.

    `actor` defaults to the signed-in user of the request being served (or none: the platform itself);
    `request` defaults to that request too, for the IP and user agent. `obj` fills object_type, object_id
    and object_repr from a model instance. Runs inside the caller's transaction when there is one, so an
    action that is rolled back leaves no event; appends are serialised on the chain head's row lock.
    """
    request = request if request is not None else current_request()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    fields = {
        "at": timezone.now(),
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
    with transaction.atomic():
        head = _lock_head()
        seq = head.seq + 1
        digest = chain.content_hash(chain.event_content(seq=seq, prev_hash=head.hash, **fields))
        event = AuditEvent.objects.create(seq=seq, prev_hash=head.hash, hash=digest, **fields)
        head.seq, head.hash = seq, digest
        head.save(update_fields=["seq", "hash"])
    return event


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
