-- title: Conversion per channel
-- display: table
-- Of the clients who started booking in the chat, how many booked, per messenger.
SELECT channel,
       count(DISTINCT client) FILTER (WHERE kind = 'step_reached' AND step = 'book.service')
           AS started,
       count(DISTINCT client) FILTER (WHERE kind = 'booking_created' AND origin = 'chat')
           AS booked,
       round(100.0 * count(DISTINCT client) FILTER (WHERE kind = 'booking_created'
                                                    AND origin = 'chat')
             / NULLIF(count(DISTINCT client) FILTER (WHERE kind = 'step_reached'
                                                     AND step = 'book.service'), 0), 1)
           AS conversion_percent
FROM events
WHERE salon = {{salon}}
  AND channel <> ''
  AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
GROUP BY channel
ORDER BY channel
