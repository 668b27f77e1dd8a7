-- title: Busiest booking hours
-- display: bar
-- Visits booked, by the hour of the salon's day they start.
SELECT extract(hour FROM starts_at)::int AS hour,
       count(*) AS bookings
FROM events
WHERE salon = {{salon}}
  AND kind = 'booking_created'
  AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
GROUP BY 1
ORDER BY 1
