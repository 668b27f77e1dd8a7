"""Every Redis key Frontdesk uses, in one place. Each carries the salon id (DESIGN §5), but for
the salon registry's own (`RegistryKeys`), which concern every salon at once.

A salon's keys all begin `fd:{<salon>}:`. The braces are a Redis Cluster hash tag: "if the key
contains a {...} pattern only the substring between { and } is hashed in order to obtain the
hash slot" (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags),
so every key of a salon lives in one slot, and every Lua script and multi-key command (the
commit touches a shard's streams, a session, the analytics and dead-letter streams) stays in
that slot on a cluster. A cluster spreads the salons, not one salon's shards: a salon's load is
far below one Redis node's, and one slot per salon keeps each step atomic without splitting it.
A salon id cannot hold a brace (SALON_ID in gateway/salons/values.py), so the tag is exactly the
id. Keys written before the tag (`fd:<salon>:…`) are renamed by `frontdesk redis migrate-keys`
(gateway/pipeline/key_migration.py), which the gateway also runs when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from zlib import crc32

INBOUND_GROUP = "workers"
OUTBOUND_GROUP = "senders"


# The registry's names sit beside the salons' `fd:{<salon>}:` ones but never among them: a salon id
# cannot begin with "_" (SALON_ID's pattern in gateway/settings.py).
REGISTRY_PREFIX = "fd:_registry"


@dataclass(frozen=True, slots=True)
class RegistryKeys:
    """What the salon registry (gateway/salons) shares across the gateway's processes."""

    @property
    def salons_changed(self) -> str:
        """The pub/sub channel every write to the registry is announced on."""
        return f"{REGISTRY_PREFIX}:salons:changed"

    @property
    def key_migration(self) -> str:
        """The lock one process holds while it renames keys of the untagged layout."""
        return f"{REGISTRY_PREFIX}:migrate-keys"

    @property
    def keys_tagged(self) -> str:
        """Set once a gateway's start has renamed the untagged keys: later starts skip it."""
        return f"{REGISTRY_PREFIX}:keys-tagged"


# Every key of every salon, in the tagged layout or the untagged one of earlier releases
# (`fd:<salon>:…`, renamed by gateway/pipeline/key_migration.py).
ALL_SALON_KEYS = "fd:*"


@dataclass(frozen=True, slots=True)
class Keys:
    salon_id: str
    shards: int

    @property
    def prefix(self) -> str:
        # The hash tag: see the module's docstring.
        return f"fd:{{{self.salon_id}}}"

    @property
    def pattern(self) -> str:
        """A SCAN/KEYS pattern matching every key of the salon (braces are no glob syntax)."""
        return f"{self.prefix}:*"

    def shard_of(self, conversation: str) -> int:
        # crc32 is stable across processes and Python versions (unlike hash()).
        return crc32(conversation.encode()) % self.shards

    def dedup(self, source: str, event_id: str) -> str:
        return f"{self.prefix}:dedup:{source}:{event_id}"

    def inbound(self, shard: int) -> str:
        return f"{self.prefix}:in:{shard}"

    def outbound(self, shard: int) -> str:
        return f"{self.prefix}:out:{shard}"

    def attempts(self, shard: int) -> str:
        """Failed handling attempts per inbound entry id (survives a crash)."""
        return f"{self.prefix}:attempts:in:{shard}"

    def send_attempts(self, shard: int) -> str:
        return f"{self.prefix}:attempts:out:{shard}"

    def lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    @property
    def members(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}:dlq"

    @property
    def analytics(self) -> str:
        """Facts waiting for the analytics writer (gateway/analytics/facts.py)."""
        return f"{self.prefix}:analytics"

    @property
    def notices_due(self) -> str:
        """Planned messenger notices not yet posted back, by due time (the Novu ledger)."""
        return f"{self.prefix}:novu:due"

    def notice(self, transaction: str) -> str:
        """One planned messenger notice: what it says, and whether it went."""
        return f"{self.prefix}:novu:notice:{transaction}"

    def session(self, channel: str, user_id: str) -> str:
        return f"{self.prefix}:session:{channel}:{user_id}"

    @property
    def analytics_writer(self) -> str:
        """The lock one analytics writer holds at a time (gateway/analytics/store.py)."""
        return f"{self.analytics}:writer"

    # --- who owns a conversation, and the help desk (gateway/integrations/chatwoot) ---------

    def owner(self, channel: str, chat: str) -> str:
        """Set while a person owns the conversation (see `Owner` in bot/session.py)."""
        return f"{self.prefix}:owner:{channel}:{chat}"

    def proposal(self, channel: str, chat: str) -> str:
        """The times staff proposed to a client from the help desk, while they are held."""
        return f"{self.prefix}:proposal:{channel}:{chat}"

    def staff_press(self, request_id: str) -> str:
        """The booking a press of the Dashboard App's Book made (so that it makes only one)."""
        return f"{self.prefix}:proposal:press:{request_id}"

    def helpdesk_client(self, channel: str, chat: str) -> str:
        """A client's help desk contact and conversation ids."""
        return f"{self.prefix}:cw:client:{channel}:{chat}"

    def helpdesk_conversation(self, conversation_id: int) -> str:
        """The way back: a help desk conversation's client conversation key."""
        return f"{self.prefix}:cw:conv:{conversation_id}"

    @property
    def helpdesk_watched(self) -> str:
        """Conversations a person owns, by last activity: checked for missed webhooks."""
        return f"{self.prefix}:cw:human"

    def helpdesk_echo(self, conversation_id: int, status: str) -> str:
        """A status Frontdesk itself is setting: its webhook is an echo."""
        return f"{self.prefix}:cw:echo:{conversation_id}:{status}"

    def helpdesk_posting(self, conversation_id: int, source_id: str) -> str:
        """A line's first try at being posted to a help desk conversation."""
        return f"{self.prefix}:cw:posting:{conversation_id}:{source_id}"

    @property
    def helpdesk_seen(self) -> str:
        """The last message id reconciliation looked at, per help desk conversation."""
        return f"{self.prefix}:cw:seen"

    def helpdesk_transcript(self, channel: str, chat: str) -> str:
        """The client's recent lines, put into the help desk at a handoff."""
        return f"{self.prefix}:cw:transcript:{channel}:{chat}"

    # --- WhatsApp (gateway/integrations/whatsapp/state.py) ----------------------------------

    def whatsapp_window(self, chat: str) -> str:
        """When the client last wrote: the 24-hour window."""
        return f"{self.prefix}:wa:window:{chat}"

    def whatsapp_parked(self, chat: str) -> str:
        """Messages waiting for the window to open again."""
        return f"{self.prefix}:wa:parked:{chat}"

    def whatsapp_parked_ids(self, chat: str) -> str:
        """The parked messages' digests: a message is parked once."""
        return f"{self.prefix}:wa:parked-ids:{chat}"

    def whatsapp_notice(self, chat: str) -> str:
        """Set once the client has had the "a reply is waiting" template."""
        return f"{self.prefix}:wa:notice:{chat}"

    def whatsapp_sent(self, wamid: str) -> str:
        """A message WhatsApp accepted, by its id: what it was and when it went."""
        return f"{self.prefix}:wa:sent:{wamid}"

    def whatsapp_status(self, wamid: str) -> str:
        """The best status a sent message reached."""
        return f"{self.prefix}:wa:status:{wamid}"

    # --- one client across messengers (gateway/pipeline/identity.py) -----------------------

    def identity_number(self, number: str) -> str:
        """The chats that verified this number (E.164): conversation key -> when first."""
        return f"{self.prefix}:ident:number:{number}"

    def identity_used(self, number: str) -> str:
        """When each chat of this number was last used: conversation key -> unix time."""
        return f"{self.prefix}:ident:used:{number}"

    def identity_refused(self, number: str) -> str:
        """The chats whose client said "this is not me": never linked on this number again."""
        return f"{self.prefix}:ident:refused:{number}"

    def identity_chosen(self, number: str) -> str:
        """The chat the client chose for their reminders."""
        return f"{self.prefix}:ident:chosen:{number}"

    def identity_chat(self, conversation: str) -> str:
        """The number a chat verified (the way from a chat to its client)."""
        return f"{self.prefix}:ident:chat:{conversation}"

    # --- bookings beyond Cal.com (gateway/integrations/calcom/bookings.py) ------------------

    def client_by_phone(self, number: str) -> str:
        return f"{self.prefix}:client:phone:{number}"

    def client_by_email(self, email: str) -> str:
        return f"{self.prefix}:client:email:{email}"

    def booking(self, uid: str) -> str:
        """A booking's record: its conversation, time, where it was made."""
        return f"{self.prefix}:booking:{uid}"

    def booking_changing(self, uid: str) -> str:
        """Set while the chat itself moves or cancels the booking."""
        return f"{self.prefix}:booking:{uid}:by-chat"

    @property
    def calcom_cursor(self) -> str:
        """The last `updatedAt` seen in Cal.com's booking feed."""
        return f"{self.prefix}:calcom:cursor"

    # --- the waitlist (gateway/integrations/calcom/waitlist.py) -----------------------------
    # Every waitlist key is under `<prefix>:wl:`, so its Lua scripts touch one salon's keys.

    @property
    def waitlist_seq(self) -> str:
        """The waitlist's counter: each wait's place in the queue."""
        return f"{self.prefix}:wl:seq"

    @property
    def waitlist_queue(self) -> str:
        """Every wait by its place (first come, first served)."""
        return f"{self.prefix}:wl:queue"

    def waitlist_wait(self, wait_id: str) -> str:
        """One wait: whose, for what, and whether a time is offered to it now."""
        return f"{self.prefix}:wl:wait:{wait_id}"

    def waitlist_passed(self, wait_id: str) -> str:
        """The times a wait was offered already: never offered to it twice."""
        return f"{self.prefix}:wl:passed:{wait_id}"

    def waitlist_client(self, conversation: str) -> str:
        """A client's waits."""
        return f"{self.prefix}:wl:client:{conversation}"

    def waitlist_offering(self, conversation: str) -> str:
        """Set while a time is offered to the client: one offer at a time."""
        return f"{self.prefix}:wl:offering:{conversation}"

    def waitlist_offer(self, offer_id: str) -> str:
        """One offer: the time, its hold in Cal.com, until when, and its state."""
        return f"{self.prefix}:wl:offer:{offer_id}"

    def waitlist_slot(self, slot: str) -> str:
        """Set while a freed time is offered: never to two clients at once."""
        return f"{self.prefix}:wl:slot:{slot}"

    @property
    def waitlist_due(self) -> str:
        """Offers by when their hold ends (or now, once declined): the durable timer."""
        return f"{self.prefix}:wl:due"

    @property
    def waitlist_freed(self) -> str:
        """Freed times waiting to be offered, by when to look at them."""
        return f"{self.prefix}:wl:freed"
