-- First response time per team and month.
--
-- Computes: for each team and calendar month, how many conversations got their first response, and how long that
--   first response took: average and median in minutes of calendar time, average in minutes of business time.
-- Definition: Kustomer's own measure, conversations.firstResponse: `responseTime` (milliseconds from the
--   customer's first message to the first agent response), `businessTime` (the same within the business
--   schedule's hours), `createdAt` (when the response was sent), `assignedTeams` (the teams the conversation was
--   assigned to at that moment). A conversation counts in the month of its first response, once for each team it
--   was assigned to then; one assigned to no team is counted under team_id NULL, '(no team)'.
-- Streams: conversations (Incremental | Append + Deduped), teams (any mode), deletions (any mode).
-- Caveats:
--   * Time zone: months are cut in the session's time zone (the loader sets UTC). For the org's zone, run
--     `SET TimeZone = 'America/New_York'` first (Postgres: SET TIME ZONE; Snowflake: ALTER SESSION SET TIMEZONE;
--     BigQuery: DATE_TRUNC(DATE(ts, 'America/New_York'), MONTH)).
--   * Business hours: `business_minutes` follows the schedule Kustomer applied to each conversation
--     (business_schedules); calendar minutes count nights and weekends.
--   * Conversations never answered have no firstResponse and are not counted here (they are in backlog.sql).
--     Reopened conversations keep their first response: firstResponseSinceLastDone has the latest one.
--   * Deleted rows: soft-deleted (`deleted`), hard-deleted (`_ab_cdc_deleted_at` markers a destination kept, or
--     rows listed in `deletions`) conversations are left out by the view live_conversations
--     (views/live_conversations.sql, which run.py creates first). Spam is counted: that view says how not to.
--   * Use firstResponse.createdByTeams instead of assignedTeams to credit the responder's teams.
-- Dialect notes (written for DuckDB):
--   * JSON field: json_extract_string(col, '$.a') is BigQuery JSON_VALUE(col, '$.a'), Snowflake col:a::string,
--     Postgres col->>'a'.
--   * JSON array to rows: `FROM t, unnest(CAST(t.col AS VARCHAR[])) AS x(v)` is BigQuery `FROM t,
--     UNNEST(JSON_VALUE_ARRAY(t.col)) AS v`, Snowflake `FROM t, LATERAL FLATTEN(input => t.col) f` (v =
--     f.value::string), Postgres `FROM t, jsonb_array_elements_text(t.col) AS x(v)`.
--   * TIMESTAMP WITH TIME ZONE is BigQuery TIMESTAMP, Snowflake TIMESTAMP_TZ; date_trunc('month', ts) is BigQuery
--     TIMESTAMP_TRUNC(ts, MONTH); percentile_cont(0.5) WITHIN GROUP (ORDER BY x) is BigQuery
--     APPROX_QUANTILES(x, 2)[OFFSET(1)].
--   * Postgres: a destination that kept camelCase column names needs them quoted ("firstResponse").
WITH responses AS (
    SELECT
        c.id AS conversation_id,
        CAST(json_extract_string(c.firstResponse, '$.createdAt') AS TIMESTAMP WITH TIME ZONE) AS responded_at,
        CAST(json_extract_string(c.firstResponse, '$.responseTime') AS DOUBLE) AS response_ms,
        CAST(json_extract_string(c.firstResponse, '$.businessTime') AS DOUBLE) AS business_ms
    FROM live_conversations AS c
    WHERE json_extract_string(c.firstResponse, '$.responseTime') IS NOT NULL
),
response_teams AS (
    SELECT c.id AS conversation_id, x.team_id
    FROM live_conversations AS c,
         unnest(CAST(json_extract(c.firstResponse, '$.assignedTeams') AS VARCHAR[])) AS x(team_id)
)
SELECT
    CAST(date_trunc('month', r.responded_at) AS DATE) AS month,
    rt.team_id,
    CASE WHEN rt.team_id IS NULL THEN '(no team)' ELSE COALESCE(t.displayName, t.name, rt.team_id) END AS team,
    COUNT(*) AS responded_conversations,
    AVG(r.response_ms) / 60000.0 AS avg_first_response_minutes,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY r.response_ms) / 60000.0 AS median_first_response_minutes,
    AVG(r.business_ms) / 60000.0 AS avg_business_minutes
FROM responses AS r
LEFT JOIN response_teams AS rt ON rt.conversation_id = r.conversation_id
LEFT JOIN teams AS t ON t.id = rt.team_id
GROUP BY 1, 2, 3
ORDER BY month, team
