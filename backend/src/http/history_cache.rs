//! A short-lived cache of `GET /v1/products/{m}/{asin}/history` bodies.
//!
//! Why: a popular product's chart is asked for by many clients at once
//! (issue 4's benchmark: 16 concurrent clients on one product), and each
//! answer costs two queries, a few hundred rows and ~25 KB of JSON. On a
//! busy two-core machine that work, not the index, is what queues.
//!
//! What: bodies keyed by product and query (condition, range, granularity)
//! live for [`TTL_MS`] of the app clock. Judgement calls:
//! * **Freshness.** A report accepted by *this* process drops the cached
//!   bodies of its product right after it is stored, so a client that
//!   reports and then reads sees its report. Writes this process does not
//!   see (another server on the same PostgreSQL) show up within
//!   [`TTL_MS`]; a chart one second behind is fine (reports themselves may
//!   arrive up to 24 hours after the observation).
//! * **One computation per key.** Concurrent misses of one key wait for
//!   the first one's answer (a per-key async lock) instead of all querying.
//! * **Bounded.** At most [`MAX_PRODUCTS`] products; past that the map is
//!   emptied (simple, and a full map only means the next reads miss).
//! * Only successful answers are cached; errors are computed every time.

use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a cached body is served, in ms of the app clock.
pub const TTL_MS: i64 = 1_000;
/// Products with cached bodies before the cache is emptied.
pub const MAX_PRODUCTS: usize = 10_000;

/// `(condition, range, granularity)`, as spelled on the wire.
type QueryKey = (&'static str, &'static str, &'static str);

/// One cached body: the app time it was computed at and the JSON.
type Slot = Arc<tokio::sync::Mutex<Option<(i64, Bytes)>>>;

/// The cache (one per [`super::AppState`]).
pub struct HistoryCache {
    products: Mutex<HashMap<(String, String), HashMap<QueryKey, Slot>>>,
    /// `false`: every call computes (see [`HistoryCache::disabled`]).
    enabled: bool,
}

impl Default for HistoryCache {
    fn default() -> Self {
        HistoryCache {
            products: Mutex::default(),
            enabled: true,
        }
    }
}

impl HistoryCache {
    /// A cache that caches nothing: every call computes at once, with no
    /// wait for another call of the same key. For measuring what a query
    /// costs when every client asks for a different product (issue 4's
    /// history benchmark, `uncached`): with the cache on and its entries
    /// always stale, concurrent calls of one key would compute one after
    /// the other (one computation per key), which measures a queue, not a
    /// query.
    pub fn disabled() -> Self {
        HistoryCache {
            products: Mutex::default(),
            enabled: false,
        }
    }

    /// The body for `(marketplace, asin, query)` at app time `now`: a
    /// fresh cached one, or `compute()`'s (cached when it succeeds).
    pub async fn get_or_compute<E, F, Fut>(
        &self,
        marketplace: &str,
        asin: &str,
        query: QueryKey,
        now: i64,
        compute: F,
    ) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, E>>,
    {
        if !self.enabled {
            return compute().await;
        }
        let slot = {
            let Ok(mut map) = self.products.lock() else {
                // A poisoned lock only loses caching.
                return compute().await;
            };
            if map.len() >= MAX_PRODUCTS && !map.contains_key(&(marketplace.into(), asin.into())) {
                map.clear();
            }
            map.entry((marketplace.to_string(), asin.to_string()))
                .or_default()
                .entry(query)
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().await;
        if let Some((at, body)) = guard.as_ref() {
            if (0..=TTL_MS).contains(&(now - at)) {
                return Ok(body.clone());
            }
        }
        let body = compute().await?;
        *guard = Some((now, body.clone()));
        Ok(body)
    }

    /// Drops every cached body of a product (after a report of it was
    /// stored). A computation in flight keeps its now unreachable slot.
    pub fn invalidate(&self, marketplace: &str, asin: &str) {
        if let Ok(mut map) = self.products.lock() {
            map.remove(&(marketplace.to_string(), asin.to_string()));
        }
    }

    /// Products with cached bodies (for tests).
    pub fn len(&self) -> usize {
        self.products.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const Q: QueryKey = ("new", "1y", "day");

    async fn get(c: &HistoryCache, asin: &str, now: i64, calls: &AtomicUsize) -> Bytes {
        c.get_or_compute::<(), _, _>("amazon.com", asin, Q, now, || async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Ok(Bytes::from(format!("{asin}:{n}")))
        })
        .await
        .expect("computed")
    }

    #[tokio::test]
    async fn serves_within_ttl_then_recomputes() {
        let c = HistoryCache::default();
        let calls = AtomicUsize::new(0);
        assert_eq!(get(&c, "A", 1000, &calls).await, "A:0");
        assert_eq!(get(&c, "A", 1000 + TTL_MS, &calls).await, "A:0");
        assert_eq!(get(&c, "A", 1001 + TTL_MS, &calls).await, "A:1");
        // A clock that goes back does not serve a body from the future.
        assert_eq!(get(&c, "A", 999, &calls).await, "A:2");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn disabled_always_computes_and_stores_nothing() {
        let c = HistoryCache::disabled();
        let calls = AtomicUsize::new(0);
        assert_eq!(get(&c, "A", 1000, &calls).await, "A:0");
        assert_eq!(get(&c, "A", 1000, &calls).await, "A:1");
        assert!(c.is_empty());
    }

    #[tokio::test]
    async fn invalidate_drops_only_that_product() {
        let c = HistoryCache::default();
        let calls = AtomicUsize::new(0);
        assert_eq!(get(&c, "A", 0, &calls).await, "A:0");
        assert_eq!(get(&c, "B", 0, &calls).await, "B:1");
        c.invalidate("amazon.com", "A");
        assert_eq!(get(&c, "A", 0, &calls).await, "A:2");
        assert_eq!(get(&c, "B", 0, &calls).await, "B:1");
        assert_eq!(c.len(), 2);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let c = HistoryCache::default();
        let r: Result<Bytes, &str> = c
            .get_or_compute("amazon.com", "A", Q, 0, || async { Err("down") })
            .await;
        assert_eq!(r, Err("down"));
        let calls = AtomicUsize::new(0);
        assert_eq!(get(&c, "A", 0, &calls).await, "A:0");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_compute_once() {
        let c = Arc::new(HistoryCache::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (c, calls) = (c.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_compute::<(), _, _>("amazon.com", "A", Q, 5, || async {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(Bytes::from_static(b"body"))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("task"), Ok(Bytes::from_static(b"body")));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
