//! The per-address digest batcher: alerts for one address are collected
//! for up to a minute from the first one (or until `max_alerts`), then go
//! out as one mail.
//!
//! Pure and in memory, driven by the caller's clock. It holds only alerts
//! that are already stored, so after a crash the worker rebuilds it from
//! its undelivered email alerts (pushing them again with their original
//! `created_at` as `now_ms` makes them due at once if they are old).
//! Pushing an alert id already held is a no-op, so an at-least-once outbox
//! cannot put one alert twice in a mail.
//!
//! Addresses are compared exactly as given: the caller normalises them
//! when they are stored (judgement call: the local part of an address may
//! be case-sensitive, so this module does not fold case).

use super::compose::AlertNotice;
use std::collections::HashMap;

/// Batching limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestConfig {
    /// How long alerts for one address are held after the first (ms).
    pub window_ms: i64,
    /// A batch this big is sent at once.
    pub max_alerts: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            window_ms: 60_000,
            max_alerts: 20,
        }
    }
}

/// Alerts for one address, sent as one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestBatch {
    pub address: String,
    /// The address's unsubscribe token (the latest pushed).
    pub unsubscribe_token: String,
    /// In the order they were pushed.
    pub notices: Vec<AlertNotice>,
    /// When the first alert was pushed (unix ms).
    pub first_at: i64,
}

impl DigestBatch {
    /// The ids of the alerts in this batch: the outcome of sending it
    /// applies to each.
    pub fn alert_ids(&self) -> Vec<i64> {
        self.notices.iter().map(|n| n.alert_id).collect()
    }

    /// Whether the batch should go out now.
    fn is_due(&self, now_ms: i64, config: &DigestConfig) -> bool {
        self.notices.len() >= config.max_alerts.max(1)
            || now_ms.saturating_sub(self.first_at) >= config.window_ms
    }
}

/// Collects alerts per address.
#[derive(Debug, Default)]
pub struct DigestBatcher {
    config: DigestConfig,
    pending: HashMap<String, DigestBatch>,
}

impl DigestBatcher {
    /// An empty batcher.
    pub fn new(config: DigestConfig) -> Self {
        DigestBatcher {
            config,
            pending: HashMap::new(),
        }
    }

    /// Adds an alert for `address`. Returns false if this alert id was
    /// already waiting for that address.
    pub fn push(
        &mut self,
        address: &str,
        unsubscribe_token: &str,
        notice: AlertNotice,
        now_ms: i64,
    ) -> bool {
        let batch = self
            .pending
            .entry(address.to_string())
            .or_insert_with(|| DigestBatch {
                address: address.to_string(),
                unsubscribe_token: unsubscribe_token.to_string(),
                notices: Vec::new(),
                first_at: now_ms,
            });
        if batch.notices.iter().any(|n| n.alert_id == notice.alert_id) {
            return false;
        }
        unsubscribe_token.clone_into(&mut batch.unsubscribe_token);
        batch.first_at = batch.first_at.min(now_ms);
        batch.notices.push(notice);
        true
    }

    /// Removes and returns the batches due at `now_ms` (window over or
    /// full), oldest first.
    pub fn take_due(&mut self, now_ms: i64) -> Vec<DigestBatch> {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, b)| b.is_due(now_ms, &self.config))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<DigestBatch> = due
            .into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .collect();
        out.sort_by(|a, b| a.first_at.cmp(&b.first_at).then(a.address.cmp(&b.address)));
        out
    }

    /// Removes and returns everything (shutdown), oldest first.
    pub fn take_all(&mut self) -> Vec<DigestBatch> {
        let mut out: Vec<DigestBatch> = self.pending.drain().map(|(_, b)| b).collect();
        out.sort_by(|a, b| a.first_at.cmp(&b.first_at).then(a.address.cmp(&b.address)));
        out
    }

    /// When the next batch falls due (unix ms), if any is waiting: the
    /// worker sleeps until then or until new work arrives.
    pub fn next_due_at(&self) -> Option<i64> {
        self.pending
            .values()
            .map(|b| {
                if b.notices.len() >= self.config.max_alerts.max(1) {
                    b.first_at
                } else {
                    b.first_at.saturating_add(self.config.window_ms)
                }
            })
            .min()
    }

    /// Alerts waiting, over all addresses.
    pub fn len(&self) -> usize {
        self.pending.values().map(|b| b.notices.len()).sum()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::compose::AlertKind;
    use wasm_core::asin::Asin;
    use wasm_core::marketplace::Marketplace;
    use wasm_core::types::Condition;

    fn n(id: i64) -> AlertNotice {
        AlertNotice {
            alert_id: id,
            watch_id: 1,
            asin: Asin::parse("B000000001").expect("asin"),
            marketplace: Marketplace::AMAZON_COM,
            condition: Condition::New,
            kind: AlertKind::TargetReached,
            title: "t".into(),
            old_price_minor: Some(2),
            new_price_minor: Some(1),
            created_at: 0,
        }
    }

    #[test]
    fn window_from_first_alert() {
        let mut b = DigestBatcher::new(DigestConfig::default());
        assert!(b.push("a@x", "ta", n(1), 1_000));
        assert!(b.push("a@x", "ta", n(2), 30_000));
        assert!(b.push("b@x", "tb", n(3), 50_000));
        assert!(!b.push("a@x", "ta", n(2), 55_000), "duplicate id");
        assert_eq!(b.len(), 3);
        assert_eq!(b.next_due_at(), Some(61_000));
        assert!(b.take_due(60_999).is_empty());
        let due = b.take_due(61_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].address, "a@x");
        assert_eq!(due[0].alert_ids(), vec![1, 2]);
        assert_eq!(b.next_due_at(), Some(110_000));
        assert_eq!(b.take_due(110_000)[0].alert_ids(), vec![3]);
        assert!(b.is_empty());
        assert_eq!(b.next_due_at(), None);
    }

    #[test]
    fn full_batch_is_due_at_once() {
        let mut b = DigestBatcher::new(DigestConfig {
            window_ms: 60_000,
            max_alerts: 3,
        });
        for id in 1..=3 {
            b.push("a@x", "t", n(id), 5);
        }
        assert_eq!(b.next_due_at(), Some(5));
        let due = b.take_due(6);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].notices.len(), 3);
    }

    #[test]
    fn take_all_on_shutdown() {
        let mut b = DigestBatcher::new(DigestConfig::default());
        b.push("b@x", "t", n(1), 9);
        b.push("a@x", "t", n(2), 3);
        let all = b.take_all();
        assert_eq!(
            all.iter().map(|b| b.address.as_str()).collect::<Vec<_>>(),
            vec!["a@x", "b@x"]
        );
        assert!(b.is_empty());
    }
}
