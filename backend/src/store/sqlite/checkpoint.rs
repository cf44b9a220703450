//! WAL checkpoints on a thread of their own (performance, issue 4's
//! ingest benchmark).
//!
//! SQLite's automatic checkpoint runs inside the COMMIT of the writer
//! that crosses `wal_autocheckpoint` pages: that group commit then also
//! copies every page changed since the last checkpoint into the database
//! file and syncs it, tens of milliseconds on which every batch of the
//! group waits (the p99 of the ingest latency). The ingest connection
//! therefore only checkpoints as a safety net (far above the usual WAL
//! size, see `SyncDb::open`), and this thread, on its own connection,
//! runs a PASSIVE checkpoint (it never waits for readers or the writer)
//! at most every [`CHECKPOINT_EVERY`], when woken after a commit or after
//! that interval. The work is the same; it just runs beside the writer,
//! on the other core, instead of inside a commit.
//!
//! Durability does not change: a commit is durable once it is in the WAL
//! (`synchronous=NORMAL`), checkpointed or not.

use std::path::Path;
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::super::{StoreError, StoreResult};

/// Least time between two background checkpoints.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Handle of the checkpoint thread; [`Checkpointer::stop`] ends it (so
/// does dropping the handle: the thread sees its channel closed).
pub(super) struct Checkpointer {
    wake: SyncSender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection to `path` and starts the thread.
    pub(super) fn start(path: &Path) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // One pending wake-up is enough: the thread checkpoints everything.
        let (wake, rx) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut last = Instant::now();
                // Woken after a commit, or every interval; ends once the
                // store drops its handle.
                while let Ok(()) | Err(RecvTimeoutError::Timeout) =
                    rx.recv_timeout(CHECKPOINT_EVERY)
                {
                    if last.elapsed() < CHECKPOINT_EVERY {
                        continue;
                    }
                    last = Instant::now();
                    // (busy, frames in the WAL, frames checkpointed); a
                    // failure is retried on the next round.
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    if let Err(e) = done {
                        tracing::warn!("background WAL checkpoint failed: {e}");
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            wake,
            thread: Some(thread),
        })
    }

    /// After a commit: a checkpoint may be due (never blocks).
    pub(super) fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// Ends the thread and waits for it (blocking; at most one
    /// checkpoint long).
    pub(super) fn stop(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}
