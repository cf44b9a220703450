-- Partition maintenance also adopts what sits in the default partitions:
-- rows that arrived before their partition existed (maintenance was late, a
-- late observation from a year without a partition, an import of old
-- history) get partitions of their own at the next maintenance run, so the
-- default partitions stay empty in steady state. Otherwise as in 0001:
-- history years from the year of (now - 1 day) to next year, audit days
-- from today to 7 days ahead; idempotent; returns how many partitions it
-- created. Scanning an empty default partition costs nothing; moving a
-- large one is a one-time cost after an import.
CREATE OR REPLACE FUNCTION pricewatch_ensure_partitions(now_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    created integer := 0;
    t timestamp;
BEGIN
    PERFORM pg_advisory_xact_lock(1886548823, 1);  -- partition maintenance
    FOR t IN
        SELECT generate_series(
            date_trunc('year', pricewatch_utc(now_ms - 86400000)),
            date_trunc('year', pricewatch_utc(now_ms)) + interval '1 year',
            interval '1 year')
        UNION
        SELECT DISTINCT date_trunc('year', pricewatch_utc(first_seen)) FROM history_runs_default
    LOOP
        IF pricewatch_create_partition('history_runs', 'first_seen',
                'history_runs_y' || to_char(t, 'YYYY'),
                pricewatch_ms(t), pricewatch_ms(t + interval '1 year')) THEN
            created := created + 1;
        END IF;
    END LOOP;
    FOR t IN
        SELECT generate_series(
            date_trunc('day', pricewatch_utc(now_ms)),
            date_trunc('day', pricewatch_utc(now_ms)) + interval '7 days',
            interval '1 day')
        UNION
        SELECT DISTINCT date_trunc('day', pricewatch_utc(received_at)) FROM reports_default
    LOOP
        IF pricewatch_create_partition('reports', 'received_at',
                'reports_d' || to_char(t, 'YYYYMMDD'),
                pricewatch_ms(t), pricewatch_ms(t + interval '1 day')) THEN
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;
