-- title: Top services and masters
-- display: table
SELECT service,
       COALESCE(master, '') AS master,
       count(*) AS bookings
FROM events
WHERE salon = {{salon}}
  AND kind = 'booking_created'
  AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
GROUP BY 1, 2
ORDER BY bookings DESC, service, master
LIMIT 10
