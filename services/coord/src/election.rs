//! Capture leader election and the lease that fences a deposed leader.
//!
//! Contenders create ephemeral sequential nodes under
//! `<root>/pipelines/<p>/capture/election` (Curator's `LeaderLatch` layout, through
//! `zookeeper-client`'s lock recipe); the lowest sequence leads, every other contender
//! waits on its predecessor (a hot standby: connected, registered, ready).
//!
//! Invariants:
//! - A leader acts only while its [`Lease`] is valid. The lease is renewed by a round
//!   trip to ZooKeeper that finds the leader's own node owned by its session, and
//!   lasts two thirds of the session timeout from the moment that request was *sent*.
//!   ZooKeeper cannot expire the session (and so cannot elect anybody else) sooner
//!   than a full session timeout after it last heard from the leader, so a leader's
//!   lease always ends before a successor can be elected.
//! - The lease is measured on the monotonic clock, which keeps running while the
//!   process is stopped (SIGSTOP, a VM pause): a process resumed after a long pause
//!   finds its lease expired before it can publish anything more.
//! - The broker itself cannot fence (Tansu has no Kafka transactions, so no producer
//!   epochs); records a stopped leader had already handed to its producer may still
//!   arrive after the successor started. They carry the same source positions as the
//!   successor's copies, and apply drops records whose source order is not past the one
//!   it already committed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper_client::{Client, LockOptions, LockPrefix, OwnedLockClient};

use crate::topology::{election_path, sequence_of};
use crate::zk::Zk;
use crate::CoordError;

/// Held leadership of one pipeline's capture. Dropping it deletes the contender node
/// (in the background), letting the next contender take over at once.
pub struct Leadership {
    lock: OwnedLockClient,
    lease: Lease,
    renewer: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Waits until this process leads `pipeline`'s capture. Cancel-safe: dropping the
    /// future withdraws the candidacy.
    pub async fn acquire(
        zk: &Zk,
        pipeline: &str,
        instance: &str,
    ) -> Result<Leadership, CoordError> {
        let dir = election_path(pipeline);
        let prefix =
            LockPrefix::new_curator(&dir, "latch-").map_err(|e| CoordError::zk(&dir, e))?;
        let lock =
            zk.client
                .lock(prefix, instance.as_bytes(), LockOptions::new(zk.acls()))
                .await
                .map_err(|e| match e {
                    zookeeper_client::Error::NoNode
                    | zookeeper_client::Error::RuntimeInconsistent => CoordError::Missing {
                        what: "pipeline",
                        name: pipeline.to_owned(),
                    },
                    e => CoordError::zk(&dir, e),
                })?
                .into_owned();
        let lease = Lease::new(zk.client.session_timeout());
        let renewer = tokio::spawn(renew(
            zk.client.clone(),
            lock.lock_path().to_owned(),
            lease.clone(),
        ));
        // The first renewal decides whether the lease starts valid.
        let deadline = Instant::now() + zk.client.session_timeout();
        while !lease.valid() && !lease.is_lost() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Leadership {
            lock,
            lease,
            renewer,
        })
    }

    /// Gives leadership up now (a clean shutdown or a paused standby): the next
    /// contender takes over without waiting for this session to expire.
    pub async fn release(self, zk: &Zk) {
        self.lease.lose();
        let _ = zk.client.delete(self.node(), None).await;
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    pub fn node(&self) -> &str {
        self.lock.lock_path()
    }

    /// The contender node's sequence number: grows with every election, so it can
    /// tell an older leader's work from a newer one's.
    pub fn epoch(&self) -> i64 {
        sequence_of(self.lock.lock_path())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.lease.lose();
        self.renewer.abort();
    }
}

/// Permission to act as leader, valid for a bounded time after the last successful
/// renewal. Cheap to clone and to check.
#[derive(Clone, Debug)]
pub struct Lease {
    inner: Arc<LeaseInner>,
}

#[derive(Debug)]
struct LeaseInner {
    base: Instant,
    length: Duration,
    /// Nanoseconds after `base` at which the lease ends; 0 = never granted.
    until: AtomicU64,
    lost: AtomicBool,
}

impl Lease {
    fn new(session_timeout: Duration) -> Lease {
        Lease {
            inner: Arc::new(LeaseInner {
                base: Instant::now(),
                length: session_timeout * 2 / 3,
                until: AtomicU64::new(0),
                lost: AtomicBool::new(false),
            }),
        }
    }

    fn renewed(&self, sent: Instant) {
        let until = (sent + self.inner.length)
            .duration_since(self.inner.base)
            .as_nanos() as u64;
        self.inner.until.fetch_max(until, Ordering::AcqRel);
    }

    fn lose(&self) {
        self.inner.lost.store(true, Ordering::Release);
    }

    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::Acquire)
    }

    /// True while this process may act as leader.
    pub fn valid(&self) -> bool {
        if self.is_lost() {
            return false;
        }
        let until = self.inner.until.load(Ordering::Acquire);
        (Instant::now().duration_since(self.inner.base).as_nanos() as u64) < until
    }

    /// Resolves once the lease is no longer valid.
    pub async fn expired(&self) {
        while self.valid() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn renew(client: Client, node: String, lease: Lease) {
    let every = (client.session_timeout() / 5).max(Duration::from_millis(100));
    let session = client.session_id().0;
    loop {
        let sent = Instant::now();
        match client.check_stat(&node).await {
            Ok(Some(stat)) if stat.ephemeral_owner == session => lease.renewed(sent),
            // The node is gone or belongs to another session: leadership is over.
            Ok(_) => {
                tracing::warn!(node, "capture leadership lost: the election node is gone");
                lease.lose();
                return;
            }
            Err(
                e @ (zookeeper_client::Error::SessionExpired
                | zookeeper_client::Error::ClientClosed
                | zookeeper_client::Error::AuthFailed),
            ) => {
                tracing::warn!(node, error = %e, "capture leadership lost with the ZooKeeper session");
                lease.lose();
                return;
            }
            // Unreachable for now: the lease runs out unless a later round trip
            // succeeds in time.
            Err(e) => {
                tracing::warn!(node, error = %e, "cannot renew the capture lease; waiting for ZooKeeper")
            }
        }
        tokio::time::sleep(every).await;
    }
}
