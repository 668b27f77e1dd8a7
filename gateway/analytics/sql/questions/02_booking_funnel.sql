-- title: Booking funnel
-- display: table
-- Clients who reached each stage of booking in the chat, and how many stopped there.
-- Started is what the conversion counts (booking_started: any entry into the booking flow; a
-- book.service step recorded before that fact existed; a booking made in the chat). A client
-- counts at every stage up to the furthest they reached: words such as "маникюр у Анны в
-- четверг" skip the service and master steps, and that client has still passed them.
WITH scoped AS (
    SELECT client, kind, step, origin
    FROM events
    WHERE salon = {{salon}}
      AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
),
stages (position, stage) AS (
    VALUES (1, 'started'), (2, 'service'), (3, 'master'), (4, 'time'), (5, 'confirmed')
),
reached AS (
    SELECT client,
           CASE
               WHEN kind = 'booking_created' AND origin = 'chat' THEN 5
               WHEN kind = 'step_reached' AND step IN ('book.contact', 'book.name', 'book.confirm')
                   THEN 4
               WHEN kind = 'step_reached' AND step IN ('book.day', 'book.time') THEN 3
               WHEN kind = 'step_reached' AND step = 'book.master' THEN 2
               WHEN kind = 'booking_started' OR (kind = 'step_reached' AND step = 'book.service')
                   THEN 1
           END AS position
    FROM scoped
),
-- Only clients who started count at the later stages (a move enters at the day, a resumed
-- draft at the summary): each stage is then a subset of the one before.
furthest AS (
    SELECT client, max(position) AS position
    FROM reached
    WHERE position IS NOT NULL
    GROUP BY client
    HAVING min(position) = 1 OR max(position) = 5
),
counted AS (
    SELECT s.position, s.stage, count(f.client) AS clients
    FROM stages s
    LEFT JOIN furthest f ON f.position >= s.position
    GROUP BY s.position, s.stage
)
SELECT stage,
       clients,
       clients - COALESCE(lead(clients) OVER (ORDER BY position), clients) AS dropped_here
FROM counted
ORDER BY position
