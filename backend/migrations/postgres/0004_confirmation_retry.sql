-- Confirmation mail retried with the notifier's backoff (RetryPolicy):
-- attempts made so far and when the next one is due (NULL: now). Same as
-- migrations/sqlite/0003_confirmation_retry.sql.
ALTER TABLE contacts ADD COLUMN confirm_attempts bigint NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN confirm_next_at bigint;
