-- title: Handoffs to staff: rate and reasons
-- display: table
-- Why clients were handed to a person, per 100 conversations started.
WITH scoped AS (
    SELECT kind, reason
    FROM events
    WHERE salon = {{salon}}
      AND local_at >= CAST({{start}} AS date) AND local_at < CAST({{end}} AS date) + 1
)
SELECT reason,
       count(*) AS handoffs,
       round(100.0 * count(*)
             / NULLIF((SELECT count(*) FROM scoped WHERE kind = 'conversation_started'), 0), 1)
           AS per_100_conversations
FROM scoped
WHERE kind = 'handoff_requested'
GROUP BY reason
ORDER BY handoffs DESC, reason
