-- live_conversations: the conversations a report should count; every query here that reads conversations reads
-- them through this view, so the rule is written once.
-- Leaves out soft-deleted conversations (`deleted`), hard-deleted ones whose marker a destination kept
-- (`_ab_cdc_deleted_at`) and those the `deletions` stream lists (drop that NOT EXISTS line if you do not sync it).
-- Spam is counted: add `AND COALESCE(c.spam, FALSE) = FALSE` to leave it out.
-- Create it once in the schema the connection fills (examples/analytics/run.py does before each query). BigQuery:
-- CREATE OR REPLACE VIEW <dataset>.live_conversations; Postgres: quote camelCase columns if the destination kept
-- them.
CREATE OR REPLACE VIEW live_conversations AS
SELECT c.*
FROM conversations AS c
WHERE c._ab_cdc_deleted_at IS NULL
  AND COALESCE(c.deleted, FALSE) = FALSE
  AND NOT EXISTS (SELECT 1 FROM deletions AS d WHERE d.id = c.id)
