-- SLA breach rate per month and SLA policy.
--
-- Computes: for each calendar month and SLA policy, the conversations an SLA applied to, how many breached it, and
--   the breach rate in percent.
-- Definition: conversations.sla is Kustomer's SLA state of the conversation: `matchedAt` (when a policy matched it),
--   `breached` (true once any of the policy's metrics, first response or longest unresponded message, was missed),
--   `status`, `version`. A conversation counts in the month its SLA matched, under its policy (`slaId`; the
--   policy's name is in the `slas` stream where the connector has it). Conversations no SLA matched are left out.
-- Streams: conversations (Incremental | Append + Deduped), deletions (any mode).
-- Caveats:
--   * Open conversations: an SLA still running has not breached yet, so the latest months' rates rise as their
--     conversations breach or are answered; compare closed months.
--   * Business hours: breaches are decided by Kustomer on the policy's business schedule.
--   * Time zone: months are cut in the session's time zone (the loader sets UTC); see first_response_time.sql.
--   * Deleted rows: soft-deleted and hard-deleted (markers, `deletions`) conversations are left out
--     (views/live_conversations.sql).
-- Dialect notes (written for DuckDB): the JSON field access of first_response_time.sql; `breached` compared as the
--   text 'true' works in all four (Snowflake: c.sla:breached::string); Postgres: quote camelCase names if kept.
WITH matched AS (
    SELECT
        c.id AS conversation_id,
        c.slaId AS sla_id,
        CAST(json_extract_string(c.sla, '$.matchedAt') AS TIMESTAMP WITH TIME ZONE) AS matched_at,
        CASE WHEN json_extract_string(c.sla, '$.breached') = 'true' THEN 1 ELSE 0 END AS breached
    FROM live_conversations AS c
    WHERE json_extract_string(c.sla, '$.matchedAt') IS NOT NULL
)
SELECT
    CAST(date_trunc('month', m.matched_at) AS DATE) AS month,
    m.sla_id,
    COUNT(*) AS conversations_with_sla,
    SUM(m.breached) AS breached,
    100.0 * SUM(m.breached) / COUNT(*) AS breach_rate_pct
FROM matched AS m
GROUP BY 1, 2
ORDER BY month, sla_id
