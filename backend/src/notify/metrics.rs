//! Delivery counters per channel, for the worker to export on `/metrics`.

use super::retry::DeliveryOutcome;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    /// The label value: `email`, `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    fn index(self) -> usize {
        match self {
            Channel::Email => 0,
            Channel::Webhook => 1,
        }
    }
}

/// A Prometheus series: name, help, and the counter it shows.
type Series = (&'static str, &'static str, fn(&ChannelCounts) -> u64);

/// Counts since start, per channel.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    delivered: [AtomicU64; 2],
    retries: [AtomicU64; 2],
    dead_letters: [AtomicU64; 2],
}

/// A copy of the counters for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelCounts {
    pub delivered: u64,
    pub retries: u64,
    pub dead_letters: u64,
}

impl NotifyMetrics {
    /// Counts one outcome.
    pub fn record(&self, channel: Channel, outcome: &DeliveryOutcome) {
        let counters = match outcome {
            DeliveryOutcome::Delivered => &self.delivered,
            DeliveryOutcome::Retry { .. } => &self.retries,
            DeliveryOutcome::DeadLetter { .. } => &self.dead_letters,
        };
        counters[channel.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters of one channel.
    pub fn counts(&self, channel: Channel) -> ChannelCounts {
        let i = channel.index();
        ChannelCounts {
            delivered: self.delivered[i].load(Ordering::Relaxed),
            retries: self.retries[i].load(Ordering::Relaxed),
            dead_letters: self.dead_letters[i].load(Ordering::Relaxed),
        }
    }

    /// Prometheus text exposition of the counters.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let series: [Series; 3] = [
            (
                "pricewatch_alert_deliveries_total",
                "Alert deliveries accepted by the receiver.",
                |c| c.delivered,
            ),
            (
                "pricewatch_alert_delivery_retries_total",
                "Failed alert delivery attempts that will be retried.",
                |c| c.retries,
            ),
            (
                "pricewatch_alert_dead_letters_total",
                "Alert deliveries given up (dead letters).",
                |c| c.dead_letters,
            ),
        ];
        for (name, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for channel in [Channel::Email, Channel::Webhook] {
                let value = get(&self.counts(channel));
                let _ = writeln!(out, "{name}{{channel=\"{}\"}} {value}", channel.as_str());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_channel() {
        let m = NotifyMetrics::default();
        m.record(Channel::Email, &DeliveryOutcome::Delivered);
        m.record(Channel::Webhook, &DeliveryOutcome::Retry { at: 1 });
        m.record(
            Channel::Webhook,
            &DeliveryOutcome::DeadLetter { reason: "x".into() },
        );
        m.record(
            Channel::Webhook,
            &DeliveryOutcome::DeadLetter { reason: "y".into() },
        );
        assert_eq!(
            m.counts(Channel::Webhook),
            ChannelCounts {
                delivered: 0,
                retries: 1,
                dead_letters: 2
            }
        );
        let text = m.render_prometheus();
        assert!(text.contains("pricewatch_alert_dead_letters_total{channel=\"webhook\"} 2\n"));
        assert!(text.contains("pricewatch_alert_deliveries_total{channel=\"email\"} 1\n"));
    }
}
