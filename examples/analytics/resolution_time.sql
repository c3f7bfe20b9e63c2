-- Resolution time per team and month.
--
-- Computes: for each team and calendar month, how many conversations were resolved (marked done for the first
--   time), and how long that took: average and median in hours of calendar time, average in hours of business time.
-- Definition: Kustomer's own measure, conversations.firstDone: `time` (milliseconds from the conversation's
--   creation to its first done), `businessTime` (the same within the business schedule's hours), `createdAt`
--   (when it was done), `assignedTeams` (the teams it was assigned to then). A conversation counts in the month it
--   was first done, once for each team it was assigned to then; one assigned to no team under team_id NULL,
--   '(no team)'.
-- Streams: conversations (Incremental | Append + Deduped), teams (any mode), deletions (any mode).
-- Caveats:
--   * Time zone: months are cut in the session's time zone (the loader sets UTC); see first_response_time.sql.
--   * Business hours: `avg_business_hours` follows the schedule Kustomer applied (business_schedules); calendar
--     hours count nights and weekends.
--   * First resolution: a conversation reopened and done again keeps its firstDone; use lastDone for the final
--     resolution (its `time` is also from creation). Conversations not done yet are not counted (see backlog.sql).
--   * Deleted rows: soft-deleted, hard-deleted (markers a destination kept, rows in `deletions`) conversations are
--     left out (views/live_conversations.sql).
-- Dialect notes (written for DuckDB): as first_response_time.sql (JSON field and array access, TIMESTAMP WITH
--   TIME ZONE, date_trunc, percentile_cont); Postgres: quote camelCase column names if the destination kept them.
WITH resolved AS (
    SELECT
        c.id AS conversation_id,
        CAST(json_extract_string(c.firstDone, '$.createdAt') AS TIMESTAMP WITH TIME ZONE) AS done_at,
        CAST(json_extract_string(c.firstDone, '$.time') AS DOUBLE) AS resolution_ms,
        CAST(json_extract_string(c.firstDone, '$.businessTime') AS DOUBLE) AS business_ms
    FROM live_conversations AS c
    WHERE json_extract_string(c.firstDone, '$.time') IS NOT NULL
),
resolved_teams AS (
    SELECT c.id AS conversation_id, x.team_id
    FROM live_conversations AS c,
         unnest(CAST(json_extract(c.firstDone, '$.assignedTeams') AS VARCHAR[])) AS x(team_id)
)
SELECT
    CAST(date_trunc('month', r.done_at) AS DATE) AS month,
    rt.team_id,
    CASE WHEN rt.team_id IS NULL THEN '(no team)' ELSE COALESCE(t.displayName, t.name, rt.team_id) END AS team,
    COUNT(*) AS resolved_conversations,
    AVG(r.resolution_ms) / 3600000.0 AS avg_resolution_hours,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY r.resolution_ms) / 3600000.0 AS median_resolution_hours,
    AVG(r.business_ms) / 3600000.0 AS avg_business_hours
FROM resolved AS r
LEFT JOIN resolved_teams AS rt ON rt.conversation_id = r.conversation_id
LEFT JOIN teams AS t ON t.id = rt.team_id
GROUP BY 1, 2, 3
ORDER BY month, team
