-- title: Cancellations and no-shows, with and without an answered reminder
-- display: table
WITH booked AS (
    SELECT DISTINCT booking
    FROM events
    WHERE salon = {{salon}}
      AND kind IN ('booking_created', 'booking_rescheduled')
      AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
      -- A moved visit counts once, under its newest booking.
      AND booking NOT IN (
          SELECT previous_booking FROM events
          WHERE salon = {{salon}} AND previous_booking IS NOT NULL
      )
),
marked AS (
    SELECT booking,
           bool_or(kind = 'reminder_answered') AS answered,
           bool_or(kind = 'booking_cancelled') AS cancelled,
           bool_or(kind = 'no_show_marked') AS no_show
    FROM events
    WHERE salon = {{salon}} AND booking IN (SELECT booking FROM booked)
    GROUP BY booking
)
SELECT CASE WHEN answered THEN 'answered a reminder' ELSE 'no answered reminder' END
           AS reminder,
       count(*) AS bookings,
       count(*) FILTER (WHERE cancelled) AS cancelled,
       count(*) FILTER (WHERE no_show) AS no_shows
FROM marked
GROUP BY 1
ORDER BY 1
