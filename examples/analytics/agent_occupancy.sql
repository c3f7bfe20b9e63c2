-- Agent occupancy per agent and month.
--
-- Computes: for each agent and calendar month, their work sessions, the hours signed in and available, the share of
--   signed-in time spent available, the work items they handled and the hours handling them, and occupancy:
--   handling time as a percent of available time.
-- Definition: work_sessions rows are Kustomer's routing work sessions, one per agent sign-in (`userId`,
--   `signedInAt`, `signedOutAt`), with `totalAvailable` and `totalUnavailable` objects whose `time` is the
--   milliseconds spent in available, and in busy or unavailable, routing statuses. work_items rows are the
--   conversations routed to agents, each accepted within a session (`workSessionId`), with `handle.time` the
--   milliseconds from accepting to finishing it. A session and its items count in the month the session was
--   signed in. occupancy_pct = 100 * handle time / available time.
-- Streams: work_sessions (Incremental | Append + Deduped), work_items (Incremental | Append + Deduped), users (any
--   mode).
-- Caveats:
--   * Concurrency: an agent handles several items at once up to their capacity, so occupancy can pass 100.
--   * Sessions still open (no signedOutAt) count the time Kustomer had totalled when they were synced; items still
--     being worked (routed, assigned) have no handle time yet.
--   * A session across midnight of a month's last day counts whole in the month it started. Calendar time:
--     `businessTime` beside each `time` has the business-hours part.
--   * Time zone: months are cut in the session's time zone (the loader sets UTC); see first_response_time.sql.
--   * Deleted rows: work on conversations deleted later still counts (the agent did it). Without work_items,
--     conversation_times.handleTime (seconds) of the agent's conversations is a rougher handle time.
-- Dialect notes (written for DuckDB): the JSON field access and date_trunc of first_response_time.sql; Postgres:
--   quote camelCase column names if the destination kept them.
WITH sessions AS (
    SELECT
        ws.id AS session_id,
        ws.userId AS agent_id,
        CAST(date_trunc('month', ws.signedInAt) AS DATE) AS month,
        COALESCE(CAST(json_extract_string(ws.totalAvailable, '$.time') AS DOUBLE), 0) AS available_ms,
        COALESCE(CAST(json_extract_string(ws.totalUnavailable, '$.time') AS DOUBLE), 0) AS unavailable_ms
    FROM work_sessions AS ws
    WHERE ws.signedInAt IS NOT NULL
),
handled AS (
    SELECT wi.workSessionId AS session_id, COUNT(*) AS items,
           SUM(CAST(json_extract_string(wi.handle, '$.time') AS DOUBLE)) AS handle_ms
    FROM work_items AS wi
    WHERE wi.workSessionId IS NOT NULL AND json_extract_string(wi.handle, '$.time') IS NOT NULL
    GROUP BY wi.workSessionId
)
SELECT
    s.month,
    s.agent_id,
    COALESCE(u.displayName, u.name, u.email, s.agent_id, '(unknown)') AS agent,
    COUNT(*) AS sessions,
    SUM(s.available_ms + s.unavailable_ms) / 3600000.0 AS signed_in_hours,
    SUM(s.available_ms) / 3600000.0 AS available_hours,
    100.0 * SUM(s.available_ms) / NULLIF(SUM(s.available_ms + s.unavailable_ms), 0) AS available_pct,
    SUM(COALESCE(h.items, 0)) AS handled_items,
    SUM(COALESCE(h.handle_ms, 0)) / 3600000.0 AS handle_hours,
    100.0 * SUM(COALESCE(h.handle_ms, 0)) / NULLIF(SUM(s.available_ms), 0) AS occupancy_pct
FROM sessions AS s
LEFT JOIN handled AS h ON h.session_id = s.session_id
LEFT JOIN users AS u ON u.id = s.agent_id
GROUP BY 1, 2, 3
ORDER BY month, agent
