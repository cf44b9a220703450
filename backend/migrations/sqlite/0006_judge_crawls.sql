-- "Judge" crawls (trust::schedule::judge_crawl_due): the tick queues at
-- most one an hour for series whose waiting reports
-- (0005_waiting) come from keys with no evidence yet. The budget is
-- counted from the job rows; this partial index keeps that count a short
-- range scan instead of a scan of every job.
CREATE INDEX verification_jobs_judge ON verification_jobs (enqueued_at)
    WHERE reason = 'judge';
