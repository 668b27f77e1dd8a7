"""What Novu is told of a booking change: outbox messages, sent in order per subscriber.

- The subscriber first (created or updated): a stable id per client (`<salon>:tg:<chat>`,
  `<salon>:wa:<number>`, or for a client known only by email or phone a hash of it), name,
  phone, email, language and the salon's time zone. A client whose chats are linked (one
  verified number, gateway/pipeline/identity.py) is one subscriber, named after the chat that
  verified the number first; Novu's subscriber id is ours to choose and keep (contracts/
  calcom-novu-metabase.md §2.6: "keep the mapping in our DB").
- The change's workflow, and reminders at each offset before the visit (a delay until a time
  carried in the payload), none that would fire in the past or for a visit over.
- For a move or cancellation, the cancellation (by `transactionId`) of the reminders it made
  wrong.

Every `transactionId` is deterministic, `fd-<salon>-<kind>-<uid>-<start epoch>`, and is also the
`Idempotency-Key`: a redelivered webhook queues the same calls, which Novu takes once (and the
inbox's de-duplication already stops most of them). The start time in it keeps a moved booking's
new reminders apart from the cancelled ones.

Every trigger whose messenger step will post back is also recorded in the gateway's ledger
(`gateway/integrations/novu/ledger.py`), due now or at its `sendAt`, and a cancelled reminder is
taken off it: what Novu does not post back in time, the gateway sends itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.flows.notices import Notice, NoticeKind, Notices
from bot.i18n import Catalogs
from gateway.integrations.novu import workflows
from gateway.integrations.novu.api import CHANNEL
from gateway.integrations.novu.ledger import NoticeLedger
from gateway.pipeline import Author, Conversation, Outgoing
from handlers.booking_change import BookingChange
from handlers.novu import ledger_content

WORKFLOWS = {
    NoticeKind.CONFIRMED: workflows.CONFIRMED,
    NoticeKind.MOVED: workflows.RESCHEDULED,
    NoticeKind.CANCELLED: workflows.CANCELLED,
    NoticeKind.REQUESTED: workflows.REQUESTED,
    NoticeKind.REJECTED: workflows.REJECTED,
}
# A reminder due sooner than this is not worth sending (the client just booked, or it is late).
SOON = timedelta(minutes=10)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class NovuPlanner:
    def __init__(
        self,
        salon_id: str,
        salon_name: str,
        zone: str,
        notices: Notices,
        catalogs: Catalogs,
        reminder_hours: Sequence[float],
    ) -> None:
        self.salon_id = salon_id
        self.salon_name = salon_name
        self.zone = zone
        self.notices = notices
        self.catalogs = catalogs
        self.reminder_hours = tuple(reminder_hours)

    def transaction(self, kind: str, uid: str, start: datetime) -> str:
        return f"fd-{self.salon_id}-{kind}-{uid}-{int(start.timestamp())}"

    def reminder_kind(self, hours: float) -> str:
        return f"reminder{hours:g}h"

    def subscriber_id(self, conv: Conversation | None, change: BookingChange) -> str:
        if conv is not None:
            return f"{self.salon_id}:{conv.key}"
        contact = (change.email or change.phone or change.uid).strip().lower()
        return f"{self.salon_id}:cal:{hashlib.sha256(contact.encode()).hexdigest()[:20]}"

    def plan(
        self,
        change: BookingChange,
        notice: Notice,
        conv: Conversation | None,
        locale: str,
        *,
        by_chat: bool,
        now: datetime,
        stale: Sequence[str] = (),
        anchor: Conversation | None = None,
    ) -> list[Outgoing]:
        """`stale`: reminders on record for the bookings this change makes wrong. `anchor`:
        the chat that names the client when their chats are linked (one subscriber for one
        client across messengers; the notices still name the booking's own chat)."""
        subscriber = self.subscriber_id(anchor or conv, change)

        def call(method: str, params: dict[str, Any]) -> Outgoing:
            return Outgoing(CHANNEL, subscriber, method, params, author=Author.NOTICE)

        first, _, last = change.name.partition(" ")
        profile = {
            "subscriberId": subscriber,
            "firstName": first or None,
            "lastName": last or None,
            "email": change.email,
            "phone": change.phone,
            "locale": locale,
            "timezone": self.zone,
            "data": {"salon": self.salon_id, "conversation": conv.key if conv else ""},
        }
        planned = [call("subscriber", {k: v for k, v in profile.items() if v is not None})]
        # The reminders this change makes wrong go first: a moved booking's old ones (whatever
        # the trigger that tells of the move), a cancelled one's own.
        wrong = list(stale)
        if notice.previous_uid and notice.previous_start:
            wrong += self._reminders(notice.previous_uid, notice.previous_start)
        if notice.kind in (NoticeKind.CANCELLED, NoticeKind.REJECTED):
            wrong += self._reminders(notice.uid, notice.start)
        planned += [call("cancel", {"transactionId": t}) for t in dict.fromkeys(wrong)]
        kind = notice.kind.value
        planned.append(
            self._trigger(
                call,
                subscriber,
                WORKFLOWS[notice.kind],
                self.transaction(kind, notice.uid, notice.start),
                notice,
                conv,
                locale,
                messenger=not by_chat,
            )
        )
        if notice.kind in (NoticeKind.CONFIRMED, NoticeKind.MOVED):
            for hours in self.reminder_hours:
                send_at = notice.start - timedelta(hours=hours)
                if send_at - now < SOON:
                    continue
                reminder = Notice(
                    NoticeKind.REMINDER,
                    notice.uid,
                    notice.service,
                    notice.start,
                    master=notice.master,
                )
                transaction = self.transaction(self.reminder_kind(hours), notice.uid, notice.start)
                planned.append(
                    self._trigger(
                        call,
                        subscriber,
                        workflows.REMINDER,
                        transaction,
                        reminder,
                        conv,
                        locale,
                        messenger=True,
                        extra={"sendAt": _iso(send_at), "hours": f"{hours:g}"},
                    )
                )
        return planned

    @staticmethod
    async def await_posts(ledger: NoticeLedger, planned: Sequence[Outgoing], now: datetime) -> None:
        """Record in the ledger the messenger notices a plan asks Novu to post back, and take
        off it the reminders the plan cancels."""
        for message in planned:
            transaction = str(message.params.get("transactionId", ""))
            if message.method == "cancel":
                await ledger.done(transaction)
                continue
            if message.method != "trigger":
                continue
            payload = message.params.get("payload", {})
            if payload.get("messenger") != "yes" or not payload.get("conversation"):
                continue  # no post back: told in the chat already, or no messenger
            send_at = payload.get("sendAt")
            due = datetime.fromisoformat(send_at.replace("Z", "+00:00")) if send_at else now
            await ledger.record(transaction, due, ledger_content(payload), now)

    def _reminders(self, uid: str, start: datetime) -> list[str]:
        return [self.transaction(self.reminder_kind(h), uid, start) for h in self.reminder_hours]

    @staticmethod
    def reminders_in(planned: Sequence[Outgoing]) -> list[str]:
        """The reminder transactions a plan schedules (kept with the booking, to cancel)."""
        return [
            str(o.params["transactionId"])
            for o in planned
            if o.method == "trigger" and o.params.get("name") == workflows.REMINDER
        ]

    def _trigger(
        self,
        call: Any,
        subscriber: str,
        workflow: str,
        transaction: str,
        notice: Notice,
        conv: Conversation | None,
        locale: str,
        *,
        messenger: bool,
        extra: dict[str, str] | None = None,
    ) -> Outgoing:
        _ = self.catalogs.get(locale)
        payload = {
            "transaction": transaction,
            "kind": notice.kind.value,
            "bookingUid": notice.uid,
            "conversation": conv.key if conv else "",
            "start": _iso(notice.start),
            "service": notice.service,
            "master": notice.master or "",
            "previousUid": notice.previous_uid or "",
            "previousStart": _iso(notice.previous_start) if notice.previous_start else "",
            "reason": notice.reason or "",
            # "no": the client did this in the chat and was answered there; Novu's email and
            # the reminders still go.
            "messenger": "yes" if messenger else "no",
            "subject": f"{self.salon_name}: {notice.service}",
            "text": self.notices.text(_, notice),
            "locale": locale,
            **(extra or {}),
        }
        body = {
            "name": workflow,
            "to": {"subscriberId": subscriber},
            "payload": payload,
            "transactionId": transaction,
        }
        trigger: Outgoing = call("trigger", body)
        return trigger
