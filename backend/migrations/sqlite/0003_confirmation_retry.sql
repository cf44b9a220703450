-- Confirmation mail retried with the notifier's backoff (RetryPolicy):
-- attempts made so far and when the next one is due (NULL: now).
ALTER TABLE contacts ADD COLUMN confirm_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN confirm_next_at INTEGER;
