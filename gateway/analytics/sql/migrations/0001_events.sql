-- Every fact the gateway records (gateway/analytics/facts.py), one row each.
CREATE TABLE events (
    id          text PRIMARY KEY,          -- "<source>:<provider event id>:<n>": written once
    salon       text NOT NULL,             -- SALON_ID
    at          timestamptz NOT NULL,      -- when it happened (UTC)
    local_at    timestamp NOT NULL,        -- the same moment on the salon's clock
    kind        text NOT NULL,             -- conversation_started, step_reached, booking_created, ...
    channel     text NOT NULL DEFAULT '',  -- telegram, whatsapp, or '' (a booking nobody chats about)
    client      text NOT NULL DEFAULT '',  -- salted hash of the conversation, never a name or number
    step        text,                      -- step_reached: the booking flow's step
    reason      text,                      -- handoff_requested: asked, typed, misunderstood, calendar
    booking     text,                      -- Cal.com booking uid
    origin      text,                      -- booking_*: chat (made in the chat) or calcom (elsewhere)
    service     text,                      -- booking_*: the service's title
    master      text,                      -- booking_*: the master's name (staff, not clients)
    starts_at   timestamp,                 -- booking_*: the visit, on the salon's clock
    answer      text,                      -- reminder_answered: coming, reschedule, cancel
    notice      text,                      -- notification_*: confirmed, reminder, moved, cancelled, ...
    seconds     double precision,          -- agent_first_reply: seconds from the handoff
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_salon_kind_local ON events (salon, kind, local_at);
CREATE INDEX events_salon_booking ON events (salon, booking) WHERE booking IS NOT NULL;
