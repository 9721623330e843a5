"""One order's story as time-ordered entries, built from what the services recorded.

Readers are tolerant: they take the first of a few likely field names (``at``,
``changed_at``, ``occurred_at``…) so a service may add or rename a timestamp
without breaking the trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shopctl.dlq.letters import DeadLetter, parse_time
from shopctl.services import producer_of
from shopctl.trace.sources import Story

TIME_FIELDS = ("at", "changed_at", "occurred_at", "updated_at", "created_at", "time", "timestamp")
PAYMENT_TIME_FIELDS = ("updated_at", "authorized_at", "declined_at", "voided_at", *TIME_FIELDS)
SHORT_ID = 8
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime | None
    service: str  # who recorded it (colours the line)
    what: str
    detail: str = ""
    cause: str | None = None  # the event type that caused it, when known
    problem: bool = False


def build_timeline(story: Story) -> list[Entry]:
    entries = [
        *order_entries(story.order),
        *payment_entries(story.payment),
        *email_entries(story.emails),
        *dead_letter_entries(story.dead_letters),
    ]
    # Stable: entries without a time keep their place, after all timed ones.
    return sorted(entries, key=lambda e: (e.at is None, e.at or _NEVER))


def order_entries(order: Mapping[str, Any]) -> list[Entry]:
    history = [h for h in order.get("history") or () if isinstance(h, Mapping)]
    if not history:
        status = str(order.get("status") or "PENDING")
        return [Entry(_time(order, ("created_at", *TIME_FIELDS)), "order", status, "order placed")]
    entries = []
    for change in history:
        cause, cause_id = _cause(change)
        caused_by = f"caused by {cause}" if cause else ""
        if cause_id:
            caused_by = f"{caused_by} {cause_id[:SHORT_ID]}".strip()
        details = [caused_by]
        if change.get("reason"):
            details.append(f"reason: {change['reason']}")
        entries.append(
            Entry(
                at=_time(change, TIME_FIELDS),
                service="order",
                what=f"status {change.get('status', '?')}",
                detail="; ".join(d for d in details if d),
                cause=cause,
                problem=change.get("status") == "CANCELLED",
            )
        )
    return entries


def payment_entries(payment: Mapping[str, Any] | None) -> list[Entry]:
    if payment is None:
        return []
    history = [h for h in payment.get("history") or () if isinstance(h, Mapping)]
    records = history or [payment]
    entries = []
    for record in records:
        status = str(record.get("status", "?"))
        amount = record.get("amount", payment.get("amount"))
        currency = record.get("currency", payment.get("currency")) or ""
        details = [f"{amount} {currency}".strip() if amount is not None else ""]
        if record.get("reason"):
            details.append(f"reason: {record['reason']}")
        entries.append(
            Entry(
                at=_time(record, PAYMENT_TIME_FIELDS),
                service="payment",
                what=f"payment {status}",
                detail="; ".join(d for d in details if d),
                problem=status == "DECLINED",
            )
        )
    return entries


def email_entries(emails: Iterable[Mapping[str, Any]]) -> list[Entry]:
    return [
        Entry(
            at=_time(email, ("sent_at", *TIME_FIELDS)),
            service="email",
            what=f"email '{email.get('kind', '?')}' sent",
            detail=f"to {email['to']}" if email.get("to") else "",
        )
        for email in emails
    ]


def dead_letter_entries(letters: Sequence[DeadLetter]) -> list[Entry]:
    entries = []
    for letter in letters:
        service = letter.queue.split(".", 1)[0]
        if letter.replayed_at is not None:
            entries.append(
                Entry(
                    at=letter.replayed_at,
                    service=service,
                    what=f"replayed from {letter.queue}",
                    detail=f"replay #{letter.replay_count}",
                    cause=letter.event_type,
                )
            )
        entries.append(
            Entry(
                at=letter.failed_at,
                service=service,
                what=f"dead-lettered in {letter.queue}",
                detail=_dead_letter_detail(letter),
                cause=letter.event_type,
                problem=True,
            )
        )
    return entries


def _dead_letter_detail(letter: DeadLetter) -> str:
    parts = [f"{letter.event_type or '?'} {(letter.message_id or '-')[:SHORT_ID]}"]
    error = letter.exception
    if letter.exception_message:
        error += f": {letter.exception_message}"
    parts.append(f"{letter.reason} ({error})")
    tries = []
    if letter.attempts is not None:
        tries.append(f"{letter.attempts} attempts")
    if letter.retry_count:
        tries.append(f"{letter.retry_count} retries")
    if tries:
        parts.append(", ".join(tries))
    if letter.last_error and letter.last_error != error:
        parts.append(f"last retry error: {letter.last_error}")
    return "; ".join(parts)


def _cause(change: Mapping[str, Any]) -> tuple[str | None, str | None]:
    event = change.get("event")
    if isinstance(event, Mapping):
        kind, ident = event.get("type"), event.get("id")
    else:
        kind = change.get("event_type") or event or change.get("caused_by")
        ident = change.get("event_id") or change.get("causation_id")
    return (str(kind) if kind else None, str(ident) if ident else None)


def _time(record: Mapping[str, Any], names: Iterable[str]) -> datetime | None:
    for name in names:
        moment = parse_time(record.get(name))
        if moment is not None:
            return moment
    return None


def cause_service(entry: Entry) -> str | None:
    return producer_of(entry.cause) if entry.cause else None
