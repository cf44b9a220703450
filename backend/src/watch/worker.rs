//! The notifier worker: consumes the outbox (creating alerts), sends
//! confirmation mail, and delivers pending alerts by email (digests through
//! [`DigestBatcher`]) and webhook with the retry policy of
//! [`crate::notify`]. Every state it needs lives in the database, so a new
//! worker on the same database resumes where a killed one stopped: events
//! not marked processed are evaluated again (alerts are unique per watch
//! and event), deliveries still `pending` are attempted again (email is
//! therefore at-least-once).

use super::{contact_token, AlertRecord, DeliveryChannel, DeliveryState};
use crate::notify::{
    token::token_hash, AlertNotice, Channels, DeliveryOutcome, DigestBatcher, DigestConfig,
};
use crate::store::{Storage, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use wasm_core::asin::Asin;
use wasm_core::marketplace::Marketplace;

/// Events evaluated per transaction.
const EVENTS_PER_ROUND: i64 = 64;
/// Deliveries fetched per round.
const DELIVERIES_PER_ROUND: i64 = 200;
/// Longest sleep without a wake-up (retries and digests become due).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// The worker. Build with [`Notifier::new`], run with [`Notifier::run`].
pub struct Notifier {
    store: Arc<dyn Storage>,
    channels: Option<Arc<Channels>>,
    secret: [u8; 32],
    digests: DigestBatcher,
    clock: crate::http::Clock,
}

impl Notifier {
    /// A worker over `store`. Without `channels` it only creates alerts
    /// (the extension feed); email and webhook deliveries stay pending.
    pub async fn new(
        store: Arc<dyn Storage>,
        channels: Option<Arc<Channels>>,
        digest: DigestConfig,
        clock: crate::http::Clock,
    ) -> StoreResult<Self> {
        let secret = store.install_secret().await?;
        Ok(Notifier {
            store,
            channels,
            secret,
            digests: DigestBatcher::new(digest),
            clock,
        })
    }

    /// Runs until `shutdown` turns true. Errors are logged and retried.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let signal = self.store.outbox_signal();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "notifier round failed");
            }
            let wait = async {
                match &signal {
                    Some(n) => n.notified().await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One pass: evaluate all pending events, then deliver what is due.
    pub async fn round(&mut self) -> StoreResult<()> {
        loop {
            let stats = self
                .store
                .process_outbox((self.clock)(), EVENTS_PER_ROUND)
                .await?;
            // Until nothing is left (PostgreSQL hands out one event per
            // series per claim, so a short batch does not mean the end).
            if stats.events == 0 {
                break;
            }
        }
        let Some(channels) = self.channels.clone() else {
            return Ok(());
        };
        self.confirmations(&channels).await?;
        self.webhooks(&channels).await?;
        self.emails(&channels).await?;
        Ok(())
    }

    async fn confirmations(&self, channels: &Channels) -> StoreResult<()> {
        if !channels.has_email() {
            return Ok(());
        }
        let now = (self.clock)();
        for c in self
            .store
            .pending_contacts(now, DELIVERIES_PER_ROUND)
            .await?
        {
            let token = contact_token(&self.secret, "confirm", c.key_id, &c.email, c.created_at);
            let attempt = c.attempts + 1;
            let outcome = channels
                .deliver_confirmation(
                    &c.email,
                    &token,
                    u32::try_from(attempt).unwrap_or(u32::MAX),
                    now,
                )
                .await;
            // The channels' RetryPolicy decides: a transient failure is
            // retried at its backoff time (attempts and due time stored on
            // the contact, so a restarted worker keeps the schedule); after
            // the last attempt, or on a permanent failure, the address is
            // given up: marked handled, as a sent one is.
            match outcome {
                DeliveryOutcome::Retry { at } => {
                    self.store
                        .confirmation_retry(c.key_id, &c.email, attempt, at)
                        .await?
                }
                _ => self.store.confirmation_sent(c.key_id, &c.email).await?,
            }
        }
        Ok(())
    }

    async fn webhooks(&self, channels: &Channels) -> StoreResult<()> {
        let now = (self.clock)();
        let due = self
            .store
            .due_deliveries(DeliveryChannel::Webhook, now, DELIVERIES_PER_ROUND)
            .await?;
        for a in due {
            let (Some(url), Some(secret)) = (&a.webhook_url, &a.webhook_secret) else {
                continue;
            };
            let Some(notice) = notice(&a) else { continue };
            let attempt = a.webhook_attempts + 1;
            let outcome = channels
                .deliver_webhook(url, secret.as_bytes(), &notice, attempt as u32, now)
                .await;
            self.store_outcome(&[a.id], DeliveryChannel::Webhook, attempt, &outcome)
                .await?;
        }
        Ok(())
    }

    async fn emails(&mut self, channels: &Channels) -> StoreResult<()> {
        let now = (self.clock)();
        let due = self
            .store
            .due_deliveries(DeliveryChannel::Email, now, DELIVERIES_PER_ROUND)
            .await?;
        let mut attempts = std::collections::HashMap::new();
        for a in due {
            let Some(email) = a.email.clone() else {
                continue;
            };
            let Some(notice) = notice(&a) else { continue };
            let Some(created) = self.store.contact_created_at(a.key_id, &email).await? else {
                continue;
            };
            let token = contact_token(&self.secret, "unsubscribe", a.key_id, &email, created);
            attempts.insert(a.id, a.email_attempts + 1);
            self.digests.push(&email, &token, notice, now);
        }
        for batch in self.digests.take_due(now) {
            let ids = batch.alert_ids();
            let attempt = ids
                .iter()
                .filter_map(|i| attempts.get(i))
                .copied()
                .max()
                .unwrap_or(1);
            let outcome = channels
                .deliver_email_batch(&batch, attempt as u32, now)
                .await;
            self.store_outcome(&ids, DeliveryChannel::Email, attempt, &outcome)
                .await?;
        }
        Ok(())
    }

    async fn store_outcome(
        &self,
        ids: &[i64],
        channel: DeliveryChannel,
        attempt: i64,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()> {
        let (state, next) = match outcome {
            DeliveryOutcome::Delivered => (DeliveryState::Delivered, None),
            DeliveryOutcome::Retry { at } => (DeliveryState::Pending, Some(*at)),
            DeliveryOutcome::DeadLetter { .. } => (DeliveryState::Dead, None),
        };
        self.store
            .record_delivery(ids, channel, state, attempt, next)
            .await
    }

    /// When the next digest is due (tests).
    pub fn next_digest_at(&self) -> Option<i64> {
        self.digests.next_due_at()
    }
}

/// The notice a channel needs; `None` for a row with an unusable
/// marketplace or ASIN (cannot happen for rows written by ingest).
pub fn notice(a: &AlertRecord) -> Option<AlertNotice> {
    Some(AlertNotice {
        alert_id: a.id,
        watch_id: a.watch_id,
        asin: Asin::parse(&a.asin)?,
        marketplace: Marketplace::from_domain(&a.marketplace)?,
        condition: a.condition,
        kind: a.kind,
        title: a.title.clone(),
        old_price_minor: a.old_price_minor.and_then(|p| u64::try_from(p).ok()),
        new_price_minor: a.new_price_minor.and_then(|p| u64::try_from(p).ok()),
        created_at: a.created_at,
    })
}

/// The unsubscribe token hash of a contact (the HTTP layer stores it).
pub fn unsubscribe_hash(secret: &[u8; 32], key_id: i64, email: &str, created_at: i64) -> String {
    token_hash(&contact_token(
        secret,
        "unsubscribe",
        key_id,
        email,
        created_at,
    ))
}

/// The confirmation token hash of a contact.
pub fn confirm_hash(secret: &[u8; 32], key_id: i64, email: &str, created_at: i64) -> String {
    token_hash(&contact_token(secret, "confirm", key_id, email, created_at))
}
