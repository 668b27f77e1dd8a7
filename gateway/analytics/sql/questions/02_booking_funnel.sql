-- title: Booking funnel
-- display: table
-- Clients who reached each stage of booking in the chat, and how many stopped there.
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
    SELECT DISTINCT client, stage
    FROM scoped
    CROSS JOIN LATERAL (
        VALUES
            (CASE WHEN kind = 'step_reached' AND step = 'book.service' THEN 'started' END),
            (CASE WHEN kind = 'step_reached' AND step IN ('book.master', 'book.day')
                  THEN 'service' END),
            (CASE WHEN kind = 'step_reached' AND step = 'book.day' THEN 'master' END),
            (CASE WHEN kind = 'step_reached'
                       AND step IN ('book.contact', 'book.name', 'book.confirm')
                  THEN 'time' END),
            (CASE WHEN kind = 'booking_created' AND origin = 'chat' THEN 'confirmed' END)
    ) AS s (stage)
    WHERE stage IS NOT NULL
),
-- Only clients who started count at the later stages (a move enters at the day, a resumed
-- draft at the summary): each stage is then a subset of the one before.
started AS (
    SELECT client FROM reached WHERE stage = 'started'
),
counted AS (
    SELECT s.position, s.stage, count(r.client) AS clients
    FROM stages s
    LEFT JOIN reached r ON r.stage = s.stage AND r.client IN (SELECT client FROM started)
    GROUP BY s.position, s.stage
)
SELECT stage,
       clients,
       clients - COALESCE(lead(clients) OVER (ORDER BY position), clients) AS dropped_here
FROM counted
ORDER BY position
