-- title: Conversion per channel
-- display: table
-- Of the clients who started booking in the chat, how many booked there, per messenger.
-- Started: any entry into the booking flow (booking_started: a tap on Book, a booking typed in
-- words, a waitlist offer taken), so a client who typed "маникюр в четверг" and skipped the
-- service step counts; facts from before booking_started was recorded count by their
-- book.service step; and a booking made in the chat was started there.
WITH scoped AS (
    SELECT channel, client, kind, step, origin
    FROM events
    WHERE salon = {{salon}}
      AND channel <> ''
      AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
),
started AS (
    SELECT DISTINCT channel, client
    FROM scoped
    WHERE kind = 'booking_started'
       OR (kind = 'step_reached' AND step = 'book.service')
       OR (kind = 'booking_created' AND origin = 'chat')
),
booked AS (
    SELECT DISTINCT channel, client
    FROM scoped
    WHERE kind = 'booking_created' AND origin = 'chat'
)
SELECT c.channel,
       count(s.client) AS started,
       count(b.client) AS booked,
       round(100.0 * count(b.client) / NULLIF(count(s.client), 0), 1) AS conversion_percent
FROM (SELECT DISTINCT channel FROM scoped) AS c
LEFT JOIN started s ON s.channel = c.channel
LEFT JOIN booked b ON b.channel = s.channel AND b.client = s.client
GROUP BY c.channel
ORDER BY c.channel
