-- The crawl-trigger limit of an independence group (trust::limits: the
-- keys of one network hash and registration day together) counted from the
-- job rows alone. Before, each check joined every job that ever had a
-- trigger key with `keys` (verification_jobs_trigger is ordered by key, not
-- by group) and filtered by the key's network and cohort: a scan of the
-- whole job history per check, 36% of the SQLite ingest writer's work under
-- `pricewatch loadgen` (issue 4). Now the job keeps its trigger key's group
-- (copied from `keys` when queued) and two partial indexes answer the two
-- counts (open jobs, jobs of the last day) by a short range scan.
--
-- trigger_net / trigger_cohort: the trigger key's keys.net_hash and its
-- registration day (registered_at / 86 400 000 ms, the day of UTC), NULL
-- without a trigger key or a network hash. DELETE /v1/me clears them with
-- trigger_key.
ALTER TABLE verification_jobs ADD COLUMN trigger_net BLOB;
ALTER TABLE verification_jobs ADD COLUMN trigger_cohort INTEGER;
UPDATE verification_jobs
   SET trigger_net = (SELECT k.net_hash FROM keys k WHERE k.id = verification_jobs.trigger_key),
       trigger_cohort = (SELECT k.registered_at / 86400000 FROM keys k
                          WHERE k.id = verification_jobs.trigger_key)
 WHERE trigger_key IS NOT NULL;
CREATE INDEX verification_jobs_group_day
    ON verification_jobs (trigger_net, trigger_cohort, enqueued_at)
    WHERE trigger_net IS NOT NULL AND reason <> 'spot_check';
CREATE INDEX verification_jobs_group_open
    ON verification_jobs (trigger_net, trigger_cohort, enqueued_at)
    WHERE trigger_net IS NOT NULL AND reason <> 'spot_check' AND state <> 2;
