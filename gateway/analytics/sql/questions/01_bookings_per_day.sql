-- title: Bookings per day by channel
-- display: bar
-- Bookings made (in the chat or elsewhere) per day of the salon's calendar, by the channel of
-- the client they belong to ('' when nobody chats about them).
SELECT local_at::date AS day,
       COALESCE(NULLIF(channel, ''), 'none') AS channel,
       count(*) AS bookings
FROM events
WHERE salon = {{salon}}
  AND kind = 'booking_created'
  AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
GROUP BY 1, 2
ORDER BY 1, 2
