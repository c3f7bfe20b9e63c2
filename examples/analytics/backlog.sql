-- Backlog: open conversations at the end of each day.
--
-- Computes: for every day from the first conversation's creation to the last day a conversation was created or
--   done, the conversations created that day, those done that day, and the backlog at the day's end (conversations
--   created by then and not done by then: open or snoozed).
-- Definition: a conversation is in the backlog from the day of its `createdAt` until the day it was done: for a
--   conversation whose `status` is 'done', the day of lastDone.createdAt (else `endedAt`, else `updatedAt`); one
--   that is not done now (open, snoozed) is in the backlog every day to the end. Done the day it was created: in
--   no day's backlog. backlog(day) = created up to that day - done up to that day.
-- Streams: conversations (Incremental | Append + Deduped), deletions (any mode).
-- Caveats:
--   * History: only each conversation's current status and last done time are synced, so a conversation reopened
--     and done again is counted open from its creation to its last done, also between its first done and the
--     reopening; snoozed conversations count as open. For an exact history replay conversation_events (status
--     changes, `changes.attributes.status`).
--   * Time zone: days are cut in the session's time zone (the loader sets UTC); SET TimeZone to the org's.
--   * Calendar days, business hours do not apply. At most 10,000 days (the calendar below); add a WHERE on
--     report_date to keep the recent ones.
--   * Deleted rows: soft-deleted and hard-deleted (markers, `deletions`) conversations are left out of every day
--     (views/live_conversations.sql), also the days before they were deleted.
-- Dialect notes (written for DuckDB): `first_day + n` (a date plus days) is BigQuery DATE_ADD(first_day, INTERVAL
--   n DAY) and works in Snowflake and Postgres; the digits table `(VALUES (0), ..., (9)) AS d(n)` is BigQuery
--   `UNNEST([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) AS n`; CAST(ts AS DATE) is BigQuery DATE(ts, 'UTC'); the JSON field
--   access of first_response_time.sql; Postgres: quote camelCase column names if the destination kept them.
WITH spans AS (
    SELECT
        CAST(c.createdAt AS DATE) AS opened_on,
        CASE WHEN c.status = 'done' THEN CAST(COALESCE(
            CAST(json_extract_string(c.lastDone, '$.createdAt') AS TIMESTAMP WITH TIME ZONE), c.endedAt, c.updatedAt
        ) AS DATE) END AS done_on
    FROM live_conversations AS c
    WHERE c.createdAt IS NOT NULL
),
clamped AS (  -- a done day before the creation day (clock skew) counts as the creation day
    SELECT opened_on, CASE WHEN done_on < opened_on THEN opened_on ELSE done_on END AS done_on
    FROM spans
),
bounds AS (
    SELECT MIN(opened_on) AS first_day,
           CASE WHEN MAX(done_on) > MAX(opened_on) THEN MAX(done_on) ELSE MAX(opened_on) END AS last_day
    FROM clamped
),
digits AS (
    SELECT n FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS d(n)
),
calendar AS (
    SELECT b.first_day + (d0.n + 10 * d1.n + 100 * d2.n + 1000 * d3.n) AS report_date, b.last_day
    FROM bounds AS b, digits AS d0, digits AS d1, digits AS d2, digits AS d3
),
opened AS (
    SELECT opened_on AS report_date, COUNT(*) AS n FROM clamped GROUP BY opened_on
),
closed AS (
    SELECT done_on AS report_date, COUNT(*) AS n FROM clamped WHERE done_on IS NOT NULL GROUP BY done_on
)
SELECT
    k.report_date,
    COALESCE(o.n, 0) AS created,
    COALESCE(x.n, 0) AS done,
    SUM(COALESCE(o.n, 0) - COALESCE(x.n, 0)) OVER (ORDER BY k.report_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        AS backlog
FROM calendar AS k
LEFT JOIN opened AS o ON o.report_date = k.report_date
LEFT JOIN closed AS x ON x.report_date = k.report_date
WHERE k.report_date <= k.last_day
ORDER BY k.report_date
