-- CSAT per team.
--
-- Computes: for each team, the surveys sent, the ratings received, the response rate, the average rating and the
--   CSAT score (percent of ratings that are 4 or 5).
-- Definition: satisfaction_responses has one row per conversation that was sent a survey (`status` offered,
--   unresponded, rated, commented, ...; `rating` 1-5 once answered). A rating is a row with a non-null `rating`.
--   Each survey is credited to the teams its conversation is assigned to (conversations.assignedTeams), once per
--   team; a conversation assigned to no team is under team_id NULL, '(no team)'.
-- Streams: satisfaction_responses (Incremental | Append + Deduped), conversations (Incremental | Append + Deduped),
--   teams (any mode), deletions (any mode).
-- Caveats:
--   * Only conversations that were sent a survey have a row: the response rate is of surveys sent, not of
--     conversations.
--   * The team is the conversation's assignment when it was last synced: a conversation reassigned after the
--     survey moves its rating. Where the org's surveys record who they were sent for (`sentByTeams`), unnest that
--     column instead.
--   * Scale: a 5-point rating; for a 2-point (thumbs) survey use `score` (1 satisfied) instead of rating >= 4.
--   * Deleted rows: surveys of soft- or hard-deleted conversations (markers, `deletions`) are left out
--     (views/live_conversations.sql).
--   * No time window: add `WHERE r.sentAt >= ...` for a period (cut in the session's time zone).
-- Dialect notes (written for DuckDB): the JSON array to rows of first_response_time.sql; Postgres: quote camelCase
--   column names if the destination kept them.
WITH surveys AS (
    SELECT r.conversationId AS conversation_id, r.rating
    FROM satisfaction_responses AS r
    JOIN live_conversations AS c ON c.id = r.conversationId
),
conversation_teams AS (
    SELECT c.id AS conversation_id, x.team_id
    FROM live_conversations AS c, unnest(CAST(c.assignedTeams AS VARCHAR[])) AS x(team_id)
)
SELECT
    ct.team_id,
    CASE WHEN ct.team_id IS NULL THEN '(no team)' ELSE COALESCE(t.displayName, t.name, ct.team_id) END AS team,
    COUNT(*) AS surveys_sent,
    COUNT(s.rating) AS ratings,
    100.0 * COUNT(s.rating) / COUNT(*) AS response_rate_pct,
    AVG(s.rating) AS avg_rating,
    100.0 * SUM(CASE WHEN s.rating >= 4 THEN 1 ELSE 0 END) / NULLIF(COUNT(s.rating), 0) AS csat_pct
FROM surveys AS s
LEFT JOIN conversation_teams AS ct ON ct.conversation_id = s.conversation_id
LEFT JOIN teams AS t ON t.id = ct.team_id
GROUP BY 1, 2
ORDER BY csat_pct DESC NULLS LAST, team
