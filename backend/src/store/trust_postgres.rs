//! PostgreSQL statements of the trust decisions and the verification queue
//! (see [`super::verify`] for the rules); the same statements as
//! [`super::trust_sqlite`] in PostgreSQL's dialect (smallint columns are
//! read through `::bigint` casts). `PostgresStore` calls these inside its
//! transactions; ingest holds the product's advisory lock, and leasing
//! uses `FOR UPDATE SKIP LOCKED` so concurrent verifiers and backend
//! processes never lease the same job.

use super::verify::{
    key_rep_from_row, reason, refutes, status, CorrectionRow, JobState, KeyRep, LeasedJob,
    QueueDepth, Waiting, DRIFT_BATCH, GROUP_TRIGGER_COUNTS_PG, JUDGE_SERIES_PG, KEY_REP_COLS,
    REFRESH_BATCH,
};
use super::{code, KeyId, ProductId};

/// Errors stay `sqlx::Error` here, so that ingest's retry of dead-locked
/// transactions still sees their codes.
type StoreResult<T> = std::result::Result<T, sqlx::Error>;
use crate::trust::{self, CrawlRequest, GroupId, QueuedJob, Reading, Reputation};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use std::collections::HashMap;
use wasm_core::types::{Availability, Condition};

/// The reputations of `ids` (unknown ids are absent).
pub(crate) async fn load_reporters(
    conn: &mut PgConnection,
    ids: &[KeyId],
) -> StoreResult<HashMap<KeyId, KeyRep>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(400) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT {KEY_REP_COLS} FROM keys WHERE id IN ("
        ));
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        qb.push(")");
        for row in qb.build().fetch_all(&mut *conn).await? {
            out.insert(row.try_get::<i64, _>("id")?, key_rep_from_row(&row, "")?);
        }
    }
    Ok(out)
}

/// Stores a key's evidence.
pub(crate) async fn save_reputation(
    conn: &mut PgConnection,
    key_id: KeyId,
    rep: &Reputation,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE keys SET alpha = $1, beta = $2, evidence_at = $3, severe_at = $4, \
         severe_prev_at = $5 WHERE id = $6",
    )
    .bind(rep.alpha)
    .bind(rep.beta)
    .bind(rep.evidence_at)
    .bind(rep.severe_at[0])
    .bind(rep.severe_at[1])
    .bind(key_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The open job of a series.
pub(crate) async fn open_job(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
) -> StoreResult<Option<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM verification_jobs WHERE product_id = $1 AND condition = $2 AND state <> 2",
    )
    .bind(product)
    .bind(cond)
    .fetch_optional(&mut *conn)
    .await
}

/// `A`: the watches publishing `reading` would fire (armed price watches
/// at or above the price, armed back-in-stock watches when the offer comes
/// back in stock). Cooldowns and daily caps are ignored (an upper bound:
/// the safe side).
pub(crate) async fn alerts_for(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    reading: Reading,
    alerted_availability: Option<Availability>,
) -> StoreResult<u32> {
    let price = reading
        .price
        .filter(|_| reading.availability != Availability::OutOfStock);
    let back = reading.availability == Availability::InStock
        && alerted_availability != Some(Availability::InStock);
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM watches WHERE product_id = $1 AND condition = $2 \
         AND ((armed = 1 AND $3 IS NOT NULL AND threshold >= $3) \
           OR ($4 = 1 AND back_in_stock = 1 AND stock_armed = 1))",
    )
    .bind(product)
    .bind(cond)
    .bind(price)
    .bind(i64::from(back))
    .fetch_one(&mut *conn)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Recent reports of a series (observed in the last 30 minutes, not
/// refuted) with their keys: `(key, group, trust now, reading)`.
pub(crate) async fn recent_reports(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    now: i64,
) -> StoreResult<Vec<(KeyId, GroupId, f64, Reading, i64)>> {
    let rows = sqlx::query(
        "SELECT r.key_id AS rk, r.price_minor AS rp, r.availability::bigint AS ra, r.observed_at AS rt, \
           k.registered_at AS k_registered_at, k.net_hash AS k_net_hash, k.alpha AS k_alpha, \
           k.beta AS k_beta, k.evidence_at AS k_evidence_at, k.severe_at AS k_severe_at, \
           k.severe_prev_at AS k_severe_prev_at \
         FROM reports r JOIN keys k ON k.id = r.key_id \
         WHERE r.product_id = $1 AND r.condition = $2 AND r.observed_at >= $3 AND r.status <> $4",
    )
    .bind(product)
    .bind(cond)
    .bind(now - trust::CORROBORATION_WINDOW_MS)
    .bind(status::REFUTED)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let key: i64 = row.try_get("rk")?;
        let k = key_rep_from_row(row, "k_")?;
        out.push((
            key,
            k.group(key),
            k.rep.score(now),
            Reading {
                price: row.try_get("rp")?,
                availability: code::availability_from(row.try_get("ra")?),
            },
            row.try_get("rt")?,
        ));
    }
    Ok(out)
}

/// The crawl-trigger counts of a key on probation and of its independence
/// group (jobs its keys triggered, spot checks not counted: the server
/// chooses those; open ones, and those queued in the last day), for
/// [`trust::within_crawl_limit`]. The group's jobs carry its network hash
/// and registration day (`trigger_net`, `trigger_cohort`, copied from the
/// trigger key when queued), so the group counts are short range scans of
/// two partial indexes (migration `0007_trigger_group`/`0010_trigger_group`).
pub(crate) async fn within_crawl_limit(
    conn: &mut PgConnection,
    key: KeyId,
    rep: &KeyRep,
    now: i64,
) -> StoreResult<bool> {
    let counts = |row: &PgRow| -> StoreResult<trust::TriggerCounts> {
        let open: i64 = row.try_get("open")?;
        let day: i64 = row.try_get("day")?;
        Ok(trust::TriggerCounts {
            open: u32::try_from(open).unwrap_or(u32::MAX),
            last_day: u32::try_from(day).unwrap_or(u32::MAX),
        })
    };
    let since = now - trust::DAY_MS;
    let row = sqlx::query(
        "SELECT coalesce(sum(CASE WHEN state <> 2 THEN 1 ELSE 0 END), 0) AS open, \
           count(*) AS day FROM verification_jobs WHERE trigger_key = $1 AND enqueued_at > $2 \
           AND reason <> 'spot_check'",
    )
    .bind(key)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    let mine = counts(&row)?;
    let group = match rep.net_hash {
        None => mine,
        Some(net) => {
            let row = sqlx::query(GROUP_TRIGGER_COUNTS_PG.as_str())
                .bind(&net[..])
                .bind(rep.registered_at.div_euclid(trust::DAY_MS))
                .bind(since)
                .fetch_one(&mut *conn)
                .await?;
            counts(&row)?
        }
    };
    Ok(trust::within_crawl_limit(mine, group))
}

/// Raises the pending job to what an attached report asked for
/// ([`trust::escalate`]: the higher priority, critical when either is).
pub(crate) async fn escalate(
    conn: &mut PgConnection,
    job: i64,
    wanted: &CrawlRequest,
) -> StoreResult<()> {
    let row = sqlx::query("SELECT priority, critical FROM verification_jobs WHERE id = $1")
        .bind(job)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let pending = trust::JobPriority {
        priority: row.try_get("priority")?,
        critical: row.try_get::<i64, _>("critical")? != 0,
    };
    if let Some(up) = trust::escalate(pending, wanted) {
        sqlx::query("UPDATE verification_jobs SET priority = $2, critical = $3 WHERE id = $1")
            .bind(job)
            .bind(up.priority)
            .bind(i64::from(up.critical))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Queues a job for the series unless one is open; returns the open job.
pub(crate) async fn queue_job(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    req: &CrawlRequest,
    trigger: Option<KeyId>,
    now: i64,
) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO verification_jobs (product_id, condition, reason, priority, critical, state, \
           enqueued_at, next_attempt_at, hold_expires_at, trigger_key, trigger_net, \
           trigger_cohort) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6, $7, $8, \
           (SELECT net_hash FROM keys WHERE id = $8), \
           (SELECT registered_at / 86400000 FROM keys WHERE id = $8)) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(product)
    .bind(cond)
    .bind(req.reason)
    .bind(req.priority)
    .bind(i64::from(req.critical))
    .bind(now)
    .bind(trust::outcome::hold_expires_at(now))
    .bind(trigger)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => Ok(id),
        None => open_job(conn, product, cond)
            .await?
            .ok_or_else(|| sqlx::Error::Protocol("no open job after a conflict".into())),
    }
}

/// A report judged by a job (row of `verification_reports`).
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub job: i64,
    pub key_id: KeyId,
    pub nonce: [u8; 16],
    pub received_at: i64,
    pub observed_at: i64,
    pub reading: Reading,
    pub held: bool,
    pub alerts: u32,
    pub agreed_verified: bool,
}

/// Writes links (multi-row; a repeated one is ignored).
pub(crate) async fn flush_links(conn: &mut PgConnection, links: &mut Vec<Link>) -> StoreResult<()> {
    for chunk in links.chunks(300) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "INSERT INTO verification_reports (job_id, key_id, nonce, received_at, \
               observed_at, price_minor, availability, held, alerts, agreed_verified) ",
        );
        qb.push_values(chunk, |mut b, l| {
            b.push_bind(l.job)
                .push_bind(l.key_id)
                .push_bind(l.nonce.to_vec())
                .push_bind(l.received_at)
                .push_bind(l.observed_at)
                .push_bind(l.reading.price)
                .push_bind(code::availability(l.reading.availability))
                .push_bind(i64::from(l.held))
                .push_bind(i64::from(l.alerts))
                .push_bind(i64::from(l.agreed_verified));
        });
        qb.push(" ON CONFLICT DO NOTHING");
        qb.build().execute(&mut *conn).await?;
    }
    links.clear();
    Ok(())
}

/// The links of a job, in insertion order.
pub(crate) async fn links_of(conn: &mut PgConnection, job: i64) -> StoreResult<Vec<Link>> {
    let rows = sqlx::query(
        "SELECT key_id, nonce, received_at, observed_at, price_minor, availability, held, alerts, \
           agreed_verified FROM verification_reports WHERE job_id = $1 ORDER BY received_at, key_id",
    )
    .bind(job)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let nonce: Vec<u8> = row.try_get("nonce")?;
            Ok(Link {
                job,
                key_id: row.try_get("key_id")?,
                nonce: <[u8; 16]>::try_from(nonce.as_slice())
                    .map_err(|_| sqlx::Error::Protocol("stored nonce is not 16 bytes".into()))?,
                received_at: row.try_get("received_at")?,
                observed_at: row.try_get("observed_at")?,
                reading: Reading {
                    price: row.try_get("price_minor")?,
                    availability: code::availability_from(row.try_get("availability")?),
                },
                held: row.try_get::<i64, _>("held")? != 0,
                alerts: u32::try_from(row.try_get::<i64, _>("alerts")?).unwrap_or(u32::MAX),
                agreed_verified: row.try_get::<i64, _>("agreed_verified")? != 0,
            })
        })
        .collect()
}

/// Sets the status and reason of a linked report's audit row.
pub(crate) async fn set_report_status(
    conn: &mut PgConnection,
    l: &Link,
    status: i64,
    why: &str,
) -> StoreResult<()> {
    // received_at prunes the partitions (and leads the primary key).
    sqlx::query(
        "UPDATE reports SET status = $1, reason = $2 \
         WHERE received_at = $5 AND key_id = $3 AND nonce = $4",
    )
    .bind(i16::try_from(status).unwrap_or(i16::MAX))
    .bind(i16::try_from(reason::code(why)).unwrap_or(0))
    .bind(l.key_id)
    .bind(&l.nonce[..])
    .bind(l.received_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Leases jobs (see `Storage::lease_jobs`).
pub(crate) async fn lease(
    conn: &mut PgConnection,
    owner: KeyId,
    max: u32,
    lease_ms: i64,
    now: i64,
) -> StoreResult<Vec<LeasedJob>> {
    let cap = usize::try_from(max).unwrap_or(0);
    if cap == 0 {
        return Ok(Vec::new());
    }
    // Candidates: the best `cap` of all due jobs and the best reserved
    // share of critical ones (pick_jobs then applies the reservation).
    let due = "((state = 0 AND next_attempt_at <= $1) OR (state = 1 AND lease_expires_at <= $1))";
    let mut cands: Vec<(i64, QueuedJob)> = Vec::new();
    for (filter, limit) in [
        ("", cap),
        (" AND critical = 1", trust::reserved_critical_slots(cap)),
    ] {
        let sql = format!(
            "SELECT id, priority, critical, enqueued_at FROM verification_jobs \
             WHERE {due}{filter} ORDER BY priority DESC, enqueued_at, id LIMIT $2 \
             FOR UPDATE SKIP LOCKED"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            if cands.iter().any(|(c, _)| *c == id) {
                continue;
            }
            cands.push((
                id,
                QueuedJob {
                    priority: row.try_get("priority")?,
                    critical: row.try_get::<i64, _>("critical")? != 0,
                    enqueued_at: row.try_get("enqueued_at")?,
                },
            ));
        }
    }
    let queue: Vec<QueuedJob> = cands.iter().map(|c| c.1).collect();
    let mut out = Vec::new();
    for i in trust::pick_jobs(&queue, cap) {
        let id = cands[i].0;
        let row = sqlx::query(
            "UPDATE verification_jobs SET state = 1, lease_owner = $2, lease_expires_at = $3 \
             WHERE id = $1 RETURNING id, product_id, condition, reason, priority, critical, \
               enqueued_at",
        )
        .bind(id)
        .bind(owner)
        .bind(now.saturating_add(lease_ms))
        .fetch_one(&mut *conn)
        .await?;
        let product: i64 = row.try_get("product_id")?;
        let p = sqlx::query("SELECT marketplace, asin FROM products WHERE id = $1")
            .bind(product)
            .fetch_one(&mut *conn)
            .await?;
        out.push(LeasedJob {
            id,
            marketplace: p.try_get("marketplace")?,
            asin: p.try_get("asin")?,
            condition: cond_from(row.try_get("condition")?)?,
            reason: row.try_get("reason")?,
            priority: row.try_get("priority")?,
            critical: row.try_get::<i64, _>("critical")? != 0,
            enqueued_at: row.try_get("enqueued_at")?,
        });
    }
    Ok(out)
}

pub(crate) fn cond_from(v: i64) -> StoreResult<Condition> {
    code::condition_from(v).ok_or_else(|| sqlx::Error::Protocol(format!("bad condition code {v}")))
}

/// Puts a failed job back in the queue for a retry at `at`.
pub(crate) async fn retry_job(conn: &mut PgConnection, id: i64, at: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE verification_jobs SET state = 0, attempts = attempts + 1, next_attempt_at = $2, \
           lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A job whose retries are used up keeps its reports held until `until`.
pub(crate) async fn hold_job(conn: &mut PgConnection, id: i64, until: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE verification_jobs SET state = 3, attempts = attempts + 1, hold_expires_at = $2, \
           lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(until)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a job finished.
pub(crate) async fn close_job(
    conn: &mut PgConnection,
    id: i64,
    outcome: super::verify::JobOutcome,
    verified_price: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE verification_jobs SET state = 2, finished_at = $2, outcome = $3, \
           verified_price_minor = $4, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(outcome as i64)
    .bind(verified_price)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Held reports of a job that will never be published become `stored`.
pub(crate) async fn release_holds(
    conn: &mut PgConnection,
    links: &[Link],
    why: &str,
) -> StoreResult<()> {
    for l in links.iter().filter(|l| l.held) {
        set_report_status(conn, l, 1, why).await?;
    }
    Ok(())
}

/// Jobs holding past their hold expiry.
pub(crate) async fn expired_holds(conn: &mut PgConnection, now: i64) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM verification_jobs WHERE state = 3 AND hold_expires_at <= $1 LIMIT 500",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await
}

/// Queues refresh crawls of watched series that no collector reported
/// within their refresh interval and that no job looked at since.
pub(crate) async fn queue_refreshes(
    conn: &mut PgConnection,
    now: i64,
) -> StoreResult<Vec<(ProductId, i64)>> {
    let rows = sqlx::query(
        "SELECT w.product_id, w.condition, count(*) AS n FROM watches w \
         WHERE NOT EXISTS (SELECT 1 FROM verification_jobs j WHERE j.product_id = w.product_id \
             AND j.condition = w.condition AND j.state <> 2) \
         GROUP BY w.product_id, w.condition",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut queued = Vec::new();
    for row in &rows {
        if queued.len() >= REFRESH_BATCH as usize {
            break;
        }
        let product: i64 = row.try_get("product_id")?;
        let cond: i64 = row.try_get("condition")?;
        let n: i64 = row.try_get("n")?;
        let since = now - trust::refresh_interval(u32::try_from(n).unwrap_or(u32::MAX));
        let last_report: Option<i64> = sqlx::query_scalar(
            "SELECT max(observed_at) FROM reports WHERE product_id = $1 AND condition = $2",
        )
        .bind(product)
        .bind(cond)
        .fetch_one(&mut *conn)
        .await?;
        let last_job: Option<i64> = sqlx::query_scalar(
            "SELECT max(enqueued_at) FROM verification_jobs WHERE product_id = $1 \
             AND condition = $2",
        )
        .bind(product)
        .bind(cond)
        .fetch_one(&mut *conn)
        .await?;
        if last_report.unwrap_or(i64::MIN) > since || last_job.unwrap_or(i64::MIN) > since {
            continue;
        }
        let req = CrawlRequest {
            priority: trust::crawl_priority(0, 0.0, false),
            critical: false,
            reason: "refresh",
        };
        queue_job(conn, product, cond, &req, None, now).await?;
        queued.push((product, cond));
    }
    Ok(queued)
}

/// Queues one "judge" crawl when the budget allows
/// ([`trust::schedule::judge_crawl_due`], counted from the `judge` jobs of
/// the last hour): for the series with the most waiting reports of
/// keys that have no evidence yet (`alpha` = `beta` = 1) and no other
/// waiting report, observed between [`trust::schedule::JUDGE_AFTER_MS`] and
/// the waiting horizon ago, with no open job (ties: the oldest such report,
/// then the lowest product and condition). Only the oldest
/// [`trust::schedule::JUDGE_SCAN_ROWS`] waiting reports in that time range
/// are looked at, so a tick costs a bounded range scan even under a flood
/// of waiting reports. Returns the series queued.
pub(crate) async fn queue_judge_crawl(
    conn: &mut PgConnection,
    now: i64,
) -> StoreResult<Option<(ProductId, i64)>> {
    let hour: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM verification_jobs WHERE reason = 'judge' AND enqueued_at > $1",
    )
    .bind(now - 3_600_000)
    .fetch_one(&mut *conn)
    .await?;
    if !trust::schedule::judge_crawl_due(u32::try_from(hour.max(0)).unwrap_or(u32::MAX)) {
        return Ok(None);
    }
    let row = sqlx::query(JUDGE_SERIES_PG.as_str())
        .bind(now - trust::outcome::WAITING_HORIZON_MS)
        .bind(now - trust::schedule::JUDGE_AFTER_MS)
        .bind(trust::schedule::JUDGE_SCAN_ROWS)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let product: i64 = row.try_get("product_id")?;
    let cond: i64 = row.try_get("condition")?;
    let req = CrawlRequest {
        priority: trust::crawl_priority(0, 0.0, false),
        critical: false,
        reason: "judge",
    };
    queue_job(conn, product, cond, &req, None, now).await?;
    Ok(Some((product, cond)))
}

/// Series with reports received after `after` (ms; the drift check's
/// cursor, by receipt time: the partition key), bounded, and the newest
/// receipt time seen.
pub(crate) async fn series_reported_after(
    conn: &mut PgConnection,
    after: i64,
    now: i64,
) -> StoreResult<(Vec<(ProductId, i64)>, i64)> {
    let from = after.max(now - trust::CORROBORATION_WINDOW_MS);
    let rows = sqlx::query(
        "SELECT DISTINCT product_id, condition::bigint AS condition FROM reports \
         WHERE received_at > $1 AND received_at <= $2 LIMIT $3",
    )
    .bind(from)
    .bind(now)
    .bind(DRIFT_BATCH)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push((row.try_get("product_id")?, row.try_get("condition")?));
    }
    Ok((out, now))
}

/// Open jobs by state and criticality.
pub(crate) async fn queue_depth(conn: &mut PgConnection) -> StoreResult<QueueDepth> {
    let rows = sqlx::query(
        "SELECT state, critical, count(*) AS n FROM verification_jobs WHERE state <> 2 \
         GROUP BY state, critical ORDER BY state, critical",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut d = QueueDepth::default();
    for row in &rows {
        d.open.push((
            JobState::from_code(row.try_get("state")?),
            row.try_get::<i64, _>("critical")? != 0,
            row.try_get("n")?,
        ));
    }
    Ok(d)
}

/// Inserts a corrections row.
pub(crate) async fn insert_correction(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    reported: Option<i64>,
    verified: Option<i64>,
    job: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO corrections (product_id, condition, at, reported_price_minor, \
           verified_price_minor, job_id) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(product)
    .bind(cond)
    .bind(now)
    .bind(reported)
    .bind(verified)
    .bind(job)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Corrections of a series in `[from, to]`.
pub(crate) async fn corrections(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    from: i64,
    to: i64,
) -> StoreResult<Vec<CorrectionRow>> {
    let rows = sqlx::query(
        "SELECT at, reported_price_minor, verified_price_minor FROM corrections \
         WHERE product_id = $1 AND condition = $2 AND at >= $3 AND at <= $4 ORDER BY at, id",
    )
    .bind(product)
    .bind(cond)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CorrectionRow {
                at: r.try_get("at")?,
                reported_price_minor: r.try_get("reported_price_minor")?,
                verified_price_minor: r.try_get("verified_price_minor")?,
            })
        })
        .collect()
}

/// Removes one refuted observation `(t, reading)` from the run that
/// counted it (the method of [`super::verify`]'s module docs). The audit
/// row must already carry the refuted status.
pub(crate) async fn remove_observation(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    t: i64,
    reading: Reading,
) -> StoreResult<()> {
    // The run that counted it, and the one before, must be plain rows.
    super::postgres::ensure_plain(conn, product, cond, t).await?;
    let Some(row) = sqlx::query(
        "SELECT first_seen, last_seen, price_minor, availability::bigint AS availability, n \
         FROM history_runs WHERE product_id = $1 AND condition = $2 AND first_seen <= $3 \
         ORDER BY first_seen DESC LIMIT 1",
    )
    .bind(product)
    .bind(cond)
    .bind(t)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(());
    };
    let first: i64 = row.try_get("first_seen")?;
    let last: i64 = row.try_get("last_seen")?;
    let price: Option<i64> = row.try_get("price_minor")?;
    let avail: i64 = row.try_get("availability")?;
    let n: i64 = row.try_get("n")?;
    if t > last || price != reading.price || avail != code::availability(reading.availability) {
        return Ok(()); // not counted in a run (held, or already removed)
    }
    let key = "product_id = $1 AND condition = $2";
    if n <= 1 {
        sqlx::query(&format!(
            "DELETE FROM history_runs WHERE {key} AND first_seen = $3"
        ))
        .bind(product)
        .bind(cond)
        .bind(first)
        .execute(&mut *conn)
        .await?;
        super::postgres::ensure_plain(conn, product, cond, first.saturating_sub(1)).await?;
        // Merge the neighbours when they now touch with the same value.
        let prev = sqlx::query(&format!(
            "SELECT first_seen, price_minor, availability::bigint AS availability \
             FROM history_runs WHERE {key} \
             AND first_seen < $3 ORDER BY first_seen DESC LIMIT 1"
        ))
        .bind(product)
        .bind(cond)
        .bind(first)
        .fetch_optional(&mut *conn)
        .await?;
        let next = sqlx::query(&format!(
            "SELECT first_seen, last_seen, price_minor, availability::bigint AS availability, n \
             FROM history_runs WHERE {key} AND first_seen > $3 ORDER BY first_seen ASC LIMIT 1"
        ))
        .bind(product)
        .bind(cond)
        .bind(first)
        .fetch_optional(&mut *conn)
        .await?;
        if let (Some(p), Some(nx)) = (prev, next) {
            let same = p.try_get::<Option<i64>, _>("price_minor")?
                == nx.try_get::<Option<i64>, _>("price_minor")?
                && p.try_get::<i64, _>("availability")? == nx.try_get::<i64, _>("availability")?;
            if same {
                let nx_first: i64 = nx.try_get("first_seen")?;
                let nx_last: i64 = nx.try_get("last_seen")?;
                let nx_n: i64 = nx.try_get("n")?;
                let p_first: i64 = p.try_get("first_seen")?;
                sqlx::query(&format!(
                    "DELETE FROM history_runs WHERE {key} AND first_seen = $3"
                ))
                .bind(product)
                .bind(cond)
                .bind(nx_first)
                .execute(&mut *conn)
                .await?;
                sqlx::query(&format!(
                    "UPDATE history_runs SET last_seen = GREATEST(last_seen, $4), n = n + $5 \
                     WHERE {key} AND first_seen = $3"
                ))
                .bind(product)
                .bind(cond)
                .bind(p_first)
                .bind(nx_last)
                .bind(nx_n)
                .execute(&mut *conn)
                .await?;
            }
        }
        return Ok(());
    }
    // Boundaries from the remaining audit rows of the run's value.
    let remaining = sqlx::query(
        "SELECT min(observed_at) AS lo, max(observed_at) AS hi FROM reports \
         WHERE product_id = $1 AND condition = $2 AND observed_at >= $3 AND observed_at <= $4 \
           AND price_minor IS NOT DISTINCT FROM $5 AND availability = $6 \
           AND status NOT IN ($7, $8)",
    )
    .bind(product)
    .bind(cond)
    .bind(first)
    .bind(last)
    .bind(price)
    .bind(avail)
    .bind(status::REFUTED)
    .bind(status::HELD)
    .fetch_one(&mut *conn)
    .await?;
    let lo: Option<i64> = remaining.try_get("lo")?;
    let hi: Option<i64> = remaining.try_get("hi")?;
    let new_first = if t == first {
        lo.unwrap_or(first)
    } else {
        first
    };
    let new_last = if t == last { hi.unwrap_or(last) } else { last };
    sqlx::query(&format!(
        "UPDATE history_runs SET first_seen = $4, last_seen = $5, n = n - 1 \
         WHERE {key} AND first_seen = $3"
    ))
    .bind(product)
    .bind(cond)
    .bind(first)
    .bind(new_first.max(first))
    .bind(new_last.max(new_first.max(first)))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The reports behind a published price a crawl refuted (`verify`'s
/// module docs): those of `price` observed in `from..=to`, not held, not
/// already refuted and not kept out of history (a distrusted key's, a
/// separator misread's: [`super::verify::enters_history`]), get
/// the refuted status and leave the runs, oldest first (so that each
/// removal finds its run's boundaries intact). Returns how many.
pub(crate) async fn refute_published(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    price: i64,
    from: i64,
    to: i64,
) -> StoreResult<usize> {
    // An observation is at most OBSERVATION_MAX_FUTURE_MS ahead of its
    // receipt, so received_at bounds the partitions to scan.
    let received_from = from.saturating_sub(wasm_core::protocol::OBSERVATION_MAX_FUTURE_MS);
    let rows = sqlx::query(
        "UPDATE reports SET status = $1, reason = $2 \
         WHERE received_at >= $3 AND product_id = $4 AND condition = $5 \
           AND observed_at >= $6 AND observed_at <= $7 AND price_minor = $8 \
           AND status NOT IN ($9, $1) AND reason IS DISTINCT FROM $10 \
           AND reason IS DISTINCT FROM $11 \
         RETURNING observed_at, availability::bigint AS availability",
    )
    .bind(i16::try_from(status::REFUTED).unwrap_or(i16::MAX))
    .bind(i16::try_from(reason::code("published_refuted")).unwrap_or(0))
    .bind(received_from)
    .bind(product)
    .bind(i16::try_from(cond).unwrap_or(i16::MAX))
    .bind(from)
    .bind(to)
    .bind(price)
    .bind(i16::try_from(status::HELD).unwrap_or(i16::MAX))
    .bind(i16::try_from(reason::code("distrusted_key")).unwrap_or(0))
    .bind(i16::try_from(reason::code("looks_misread")).unwrap_or(0))
    .fetch_all(&mut *conn)
    .await?;
    // Every row is marked (above) before any removal: a removal recomputes
    // run boundaries from the rows that are not refuted.
    let mut refuted = Vec::with_capacity(rows.len());
    for r in &rows {
        refuted.push((
            r.try_get::<i64, _>("observed_at")?,
            code::availability_from(r.try_get("availability")?),
        ));
    }
    refuted.sort_unstable_by_key(|(t, _)| *t);
    for (t, availability) in &refuted {
        let reading = Reading {
            price: Some(price),
            availability: *availability,
        };
        remove_observation(conn, product, cond, *t, reading).await?;
    }
    Ok(refuted.len())
}

/// `DELETE /v1/me`: the key's links to jobs and its waiting reports go
/// (its audit rows lose the key too), and the jobs it triggered forget it.
pub(crate) async fn erase_key(conn: &mut PgConnection, key: KeyId) -> StoreResult<()> {
    sqlx::query("DELETE FROM verification_reports WHERE key_id = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM waiting_reports WHERE key_id = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE verification_jobs SET trigger_key = NULL, trigger_net = NULL, \
           trigger_cohort = NULL WHERE trigger_key = $1",
    )
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Finished jobs (and their links) older than the audit retention go with
/// the audit rows they pointed at; corrections stay (history shows them).
pub(crate) async fn purge_jobs(conn: &mut PgConnection, before: i64) -> StoreResult<u64> {
    sqlx::query(
        "DELETE FROM verification_reports WHERE job_id IN \
           (SELECT id FROM verification_jobs WHERE state = 2 AND finished_at < $1)",
    )
    .bind(before)
    .execute(&mut *conn)
    .await?;
    let res = sqlx::query("DELETE FROM verification_jobs WHERE state = 2 AND finished_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(res.rows_affected())
}

// ---- Waiting reports (`verify`'s module docs) ----

/// Inserts a waiting report (one statement; a repeated one is ignored).
pub(crate) async fn insert_waiting(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    w: &Waiting,
) -> StoreResult<()> {
    let r = &w.report;
    sqlx::query(
        "INSERT INTO waiting_reports (product_id, condition, key_id, nonce, received_at, \
           observed_at, price_minor, availability, alerts, before_price_minor, \
           before_availability, in_history) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
    )
    .bind(product)
    .bind(cond)
    .bind(w.key_id)
    .bind(&w.nonce[..])
    .bind(w.received_at)
    .bind(r.observed_at)
    .bind(r.reading.price)
    .bind(code::availability(r.reading.availability))
    .bind(i64::from(r.alerts))
    .bind(r.before.and_then(|b| b.price))
    .bind(r.before.map(|b| code::availability(b.availability)))
    .bind(i64::from(w.in_history))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes (reads and deletes) every waiting report of a series, oldest
/// observation first. A row inserted concurrently and not yet committed is
/// not taken (it waits for the next crawl); ingest and results of a
/// product serialise on its advisory lock anyway.
pub(crate) async fn take_waiting(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
) -> StoreResult<Vec<Waiting>> {
    let sql = format!(
        "DELETE FROM waiting_reports WHERE product_id = $1 AND condition = $2 \
         RETURNING {}",
        Waiting::COLS
    );
    let rows = sqlx::query(&sql)
        .bind(product)
        .bind(cond)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = rows
        .iter()
        .map(Waiting::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING gives no order guarantee.
    out.sort_by_key(|w| (w.report.observed_at, w.key_id, w.nonce));
    Ok(out)
}

/// Judges the waiting reports `waiting` (just taken) of a series by the
/// crawled reading: each judgement goes to its key's evidence in `reps`
/// (the caller saves them); refuted ones get the refuted status and leave
/// the runs when they were counted there. Returns how many were refuted.
pub(crate) async fn judge_waiting(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    waiting: &[Waiting],
    crawled: &Reading,
    reps: &mut HashMap<KeyId, KeyRep>,
    now: i64,
) -> StoreResult<usize> {
    let mut refuted = Vec::new();
    for w in waiting {
        let j = trust::judge_waiting(&w.report, crawled, now);
        if let Some(k) = reps.get_mut(&w.key_id) {
            k.rep.apply(j, now);
        }
        if refutes(j) {
            // Marked before any removal: a removal recomputes run
            // boundaries from the rows that are not refuted. received_at
            // prunes the partitions (and leads the primary key).
            sqlx::query(
                "UPDATE reports SET status = $1, reason = $2 \
                 WHERE received_at = $5 AND key_id = $3 AND nonce = $4",
            )
            .bind(i16::try_from(status::REFUTED).unwrap_or(i16::MAX))
            .bind(i16::try_from(reason::code("crawl_refuted")).unwrap_or(0))
            .bind(w.key_id)
            .bind(&w.nonce[..])
            .bind(w.received_at)
            .execute(&mut *conn)
            .await?;
            refuted.push(w);
        }
    }
    // Oldest first (`waiting` is in observation order).
    for w in refuted.iter().filter(|w| w.in_history) {
        remove_observation(conn, product, cond, w.report.observed_at, w.report.reading).await?;
    }
    Ok(refuted.len())
}

/// Deletes the waiting reports observed before `before` (past the horizon:
/// no crawl may judge them any more).
pub(crate) async fn purge_waiting(conn: &mut PgConnection, before: i64) -> StoreResult<u64> {
    let res = sqlx::query("DELETE FROM waiting_reports WHERE observed_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await?;
    Ok(res.rows_affected())
}
