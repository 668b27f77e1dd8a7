-- title: Staff first response time by hour
-- display: line
-- Seconds from a handoff to the first agent reply: median and 90th percentile, by the hour of
-- the salon's day the reply came.
SELECT extract(hour FROM local_at)::int AS hour,
       count(*) AS replies,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 1) AS median_seconds,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)::numeric, 1) AS p90_seconds
FROM events
WHERE salon = {{salon}}
  AND kind = 'agent_first_reply'
  AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
GROUP BY 1
ORDER BY 1
