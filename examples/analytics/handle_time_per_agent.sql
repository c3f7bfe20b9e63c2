-- Handle time per agent and month.
--
-- Computes: for each agent and calendar month, the conversations they handled, their handle sessions, the total
--   handle time in hours and the average handle time per conversation in minutes.
-- Definition: conversation_times rows are Kustomer's timer records (v1): one per agent session on a conversation,
--   `createdById` the agent, `handleAt` when it was handled, `handleTime` in SECONDS (not milliseconds like the
--   conversations' times). A session counts in the month of its handleAt; average per conversation = the agent's
--   handle time that month / the distinct conversations they handled that month.
-- Streams: conversation_times (Incremental | Append + Deduped), conversations (Incremental | Append + Deduped, to
--   leave out the times of deleted conversations), users (any mode), deletions (any mode).
-- Caveats:
--   * Time zone: months are cut in the session's time zone (the loader sets UTC); see first_response_time.sql.
--   * Calendar time: handle time is what the timer counted, in or out of business hours.
--   * Deleted rows: times of conversations soft- or hard-deleted (markers, `deletions`) are left out by the join to
--     live_conversations (views/live_conversations.sql); conversation_times itself gets no deletion markers.
--   * Only agents with a timer record appear; time not tracked by Kustomer's timer is not here.
-- Dialect notes (written for DuckDB): date_trunc('month', ts) is BigQuery TIMESTAMP_TRUNC(ts, MONTH); Postgres:
--   quote camelCase column names if the destination kept them.
WITH sessions AS (
    SELECT ct.createdById AS agent_id, ct.conversationId AS conversation_id, ct.handleTime AS handle_seconds,
           CAST(date_trunc('month', COALESCE(ct.handleAt, ct.createdAt)) AS DATE) AS month
    FROM conversation_times AS ct
    JOIN live_conversations AS c ON c.id = ct.conversationId
    WHERE ct.handleTime IS NOT NULL
)
SELECT
    s.month,
    s.agent_id,
    COALESCE(u.displayName, u.name, u.email, s.agent_id, '(unknown)') AS agent,
    COUNT(DISTINCT s.conversation_id) AS conversations,
    COUNT(*) AS sessions,
    SUM(s.handle_seconds) / 3600.0 AS handle_hours,
    SUM(s.handle_seconds) / 60.0 / COUNT(DISTINCT s.conversation_id) AS avg_handle_minutes_per_conversation
FROM sessions AS s
LEFT JOIN users AS u ON u.id = s.agent_id
GROUP BY 1, 2, 3
ORDER BY month, handle_hours DESC, agent
