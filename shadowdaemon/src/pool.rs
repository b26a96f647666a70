//! A fixed set of worker threads behind a bounded job queue, shared by every connection
//! and shared out fairly between them.
//!
//! The operations block (file I/O on dom0's disks), so a connection's loop never runs
//! them itself: it hands each request to the pool and goes back to its ring. Several
//! workers run at once, so a slow request (a big read from a cold disk) holds one worker
//! while fast ones (a `Ping`) are answered by the others.
//!
//! # Fairness
//!
//! Each connection submits as a [`Tenant`] of its own. Jobs wait in one queue per
//! tenant, and the workers take them round-robin: the next job comes from the next
//! tenant that has one, so a guest with a thousand jobs queued does not make another's
//! single `Ping` wait behind them. A tenant may have at most
//! [`PoolConfig::guest_share`] jobs queued and running together, fewer than the workers
//! (whenever there are two or more), so one guest's slow requests never hold every
//! worker: another guest always finds one free, or free soon, and goes next.
//!
//! # Bounds and back-pressure
//!
//! * [`PoolConfig::workers`] threads, started once, never more.
//! * At most [`PoolConfig::queue`] jobs waiting in all, and a tenant's share.
//!   [`Pool::try_submit`] never blocks: past either bound it gives the job back, the
//!   connection keeps it (one job, already counted in its in-flight limit) and stops
//!   taking requests from its ring. The guest's requests then wait in the ring, and when
//!   that is full, in the guest: the back-pressure travels to the source and nothing
//!   grows.
//! * [`Pool::wake_when_space`] registers a connection's [`Wake`] to be called when a
//!   worker next takes a job off a queue or finishes one (either may be what frees the
//!   slot the connection waits for), so a stalled connection sleeps instead of polling.
//!   At most one registration per waker is kept, so the list is bounded by the number of
//!   connections.
//! * The per-tenant bookkeeping exists only while a tenant has jobs, so it is bounded by
//!   the jobs, whatever the number of connections that came and went.
//!
//! A job that panics takes the daemon down (the workspace builds with `panic = "abort"`):
//! the operations return named statuses instead of panicking.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

/// Wakes a thread that sleeps in a connection loop: called from other threads (a worker
/// that finished a job or freed a queue slot, the owner stopping the connection).
///
/// A wake that comes before the sleep must not be lost: the next sleep returns at once.
pub trait Wake: Send + Sync {
    /// Wakes the sleeper (or makes its next sleep return at once).
    fn wake(&self);
}

/// Work for the pool.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Jobs that may wait for a worker, all tenants together (at least 1).
    pub queue: usize,
}

impl Default for PoolConfig {
    /// 8 workers and 64 queued jobs: enough to overlap I/O for a handful of guests; each
    /// queued job holds at most one request (≤ 64 KiB), so the queue holds ≤ 4 MiB.
    fn default() -> Self {
        PoolConfig {
            workers: 8,
            queue: 64,
        }
    }
}

impl PoolConfig {
    /// Jobs one tenant may have queued and running together: a quarter of the workers
    /// (at least one) stay for the others, so with 8 workers a guest gets 6, with 2 it
    /// gets 1; a pool of one worker has nothing to share out.
    pub fn guest_share(&self) -> usize {
        if self.workers <= 1 {
            1
        } else {
            self.workers - (self.workers / 4).max(1)
        }
    }
}

/// Who submits a job: one per connection, for the fair share-out.
#[derive(Debug)]
pub struct Tenant {
    id: u64,
}

/// Connections waiting for a queue slot.
#[derive(Default)]
struct SpaceWaiters {
    any: AtomicBool,
    list: Mutex<Vec<Arc<dyn Wake>>>,
}

impl SpaceWaiters {
    fn register(&self, waker: &Arc<dyn Wake>) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if !list.iter().any(|w| Arc::ptr_eq(w, waker)) {
            list.push(Arc::clone(waker));
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Called by a worker right after it took or finished a job, i.e. freed a slot.
    fn wake_all(&self) {
        if !self.any.load(Ordering::SeqCst) {
            return;
        }
        let waiting = {
            let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
            self.any.store(false, Ordering::SeqCst);
            std::mem::take(&mut *list)
        };
        for w in waiting {
            w.wake();
        }
    }
}

/// One tenant's jobs.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    running: usize,
}

#[derive(Default)]
struct State {
    /// Tenants with jobs queued or running; others have no entry.
    tenants: HashMap<u64, Queue>,
    /// Tenants with jobs queued, in the order they are served next (each once).
    turn: VecDeque<u64>,
    queued: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    waiters: SpaceWaiters,
    next_tenant: AtomicU64,
    config: PoolConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, round-robin over the tenants; `None` once closed and empty.
    fn next(&self) -> Option<(u64, Job)> {
        let mut st = self.lock();
        loop {
            if let Some(tenant) = st.turn.pop_front() {
                // A tenant is in turn only with a job queued; skip it if not (a bug).
                let Some(q) = st.tenants.get_mut(&tenant) else {
                    continue;
                };
                let Some(job) = q.jobs.pop_front() else {
                    continue;
                };
                q.running += 1;
                let more = !q.jobs.is_empty();
                if more {
                    st.turn.push_back(tenant);
                }
                st.queued -= 1;
                return Some((tenant, job));
            }
            if st.closed {
                return None;
            }
            st = self.work.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn finished(&self, tenant: u64) {
        let mut st = self.lock();
        if let Some(q) = st.tenants.get_mut(&tenant) {
            q.running -= 1;
            if q.running == 0 && q.jobs.is_empty() {
                st.tenants.remove(&tenant);
            }
        }
    }
}

/// The worker pool; dropping it lets the workers finish the queued jobs, then joins them.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts the workers. Fails with `InvalidInput` for a zero bound, or if a thread
    /// cannot be started (those already started are stopped again).
    pub fn new(config: PoolConfig) -> io::Result<Pool> {
        if config.workers == 0 || config.queue == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pool needs at least one worker and one queue slot",
            ));
        }
        let mut pool = Pool {
            shared: Arc::new(Shared {
                state: Mutex::default(),
                work: Condvar::new(),
                waiters: SpaceWaiters::default(),
                next_tenant: AtomicU64::new(0),
                config,
            }),
            workers: Vec::with_capacity(config.workers),
        };
        for i in 0..config.workers {
            let shared = Arc::clone(&pool.shared);
            let worker = thread::Builder::new()
                .name(format!("shadow-worker-{i}"))
                .spawn(move || {
                    while let Some((tenant, job)) = shared.next() {
                        shared.waiters.wake_all();
                        job();
                        shared.finished(tenant);
                        shared.waiters.wake_all();
                    }
                })?; // on error, dropping `pool` stops and joins the started ones
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// The bounds the pool was built with.
    pub fn config(&self) -> PoolConfig {
        self.shared.config
    }

    /// A new tenant (one per connection).
    pub fn tenant(&self) -> Tenant {
        Tenant {
            id: self.shared.next_tenant.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Queues a job of `tenant` if the queue has a slot and the tenant is within its
    /// share; gives it back otherwise (never blocks).
    pub fn try_submit(&self, tenant: &Tenant, job: Job) -> Result<(), Job> {
        let share = self.shared.config.guest_share();
        let mut st = self.shared.lock();
        if st.closed || st.queued >= self.shared.config.queue {
            return Err(job);
        }
        let q = st.tenants.entry(tenant.id).or_default();
        if q.jobs.len() + q.running >= share {
            if q.jobs.is_empty() && q.running == 0 {
                st.tenants.remove(&tenant.id);
            }
            return Err(job);
        }
        let first = q.jobs.is_empty();
        q.jobs.push_back(job);
        if first {
            st.turn.push_back(tenant.id);
        }
        st.queued += 1;
        drop(st);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Jobs of `tenant` queued and running now (for tests and logs).
    pub fn jobs_of(&self, tenant: &Tenant) -> usize {
        self.shared
            .lock()
            .tenants
            .get(&tenant.id)
            .map_or(0, |q| q.jobs.len() + q.running)
    }

    /// Calls `waker` once a worker next takes a job off a queue or finishes one.
    /// Register *before* retrying [`Self::try_submit`], so a slot freed in between is
    /// not missed.
    pub fn wake_when_space(&self, waker: &Arc<dyn Wake>) {
        self.shared.waiters.register(waker);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing ends each worker's loop once the queues are empty.
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                log::error!("a worker thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::sync::Condvar;
    use std::time::Duration;

    /// A gate jobs wait at until the test opens it.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        cv: Condvar,
    }

    impl Gate {
        fn wait(&self) {
            let g = self.open.lock().unwrap();
            drop(self.cv.wait_while(g, |open| !*open).unwrap());
        }
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.cv.notify_all();
        }
    }

    struct Flag(mpsc::SyncSender<()>);
    impl Wake for Flag {
        fn wake(&self) {
            let _ = self.0.try_send(());
        }
    }

    #[test]
    fn zero_bounds_are_refused() {
        for (workers, queue) in [(0, 1), (1, 0)] {
            let e = Pool::new(PoolConfig { workers, queue }).err().unwrap();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn runs_every_job_once_and_drop_waits_for_them() {
        let done = Arc::new(AtomicUsize::new(0));
        let pool = Pool::new(PoolConfig {
            workers: 3,
            queue: 4,
        })
        .unwrap();
        let tenant = pool.tenant();
        let mut submitted = 0;
        while submitted < 100 {
            let d = Arc::clone(&done);
            match pool.try_submit(
                &tenant,
                Box::new(move || {
                    d.fetch_add(1, Ordering::SeqCst);
                }),
            ) {
                Ok(()) => submitted += 1,
                Err(_) => thread::yield_now(),
            }
        }
        drop(pool);
        assert_eq!(done.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn a_full_queue_gives_the_job_back_then_wakes_when_a_slot_frees() {
        let gate = Arc::new(Gate::default());
        let (started_tx, started) = mpsc::channel();
        let pool = Pool::new(PoolConfig {
            workers: 1,
            queue: 2,
        })
        .unwrap();
        // One job holds the only worker; two more fill the queue (three tenants: one
        // job each is their share of a one-worker pool).
        let tenants: Vec<Tenant> = (0..4).map(|_| pool.tenant()).collect();
        for (i, tenant) in tenants[..3].iter().enumerate() {
            let (g, s) = (Arc::clone(&gate), started_tx.clone());
            let job: Job = Box::new(move || {
                s.send(()).unwrap();
                g.wait();
            });
            assert!(
                pool.try_submit(tenant, job).is_ok(),
                "queue refused job {i}"
            );
            if i == 0 {
                // The first job must be running before the others fill the queue.
                started.recv_timeout(Duration::from_secs(20)).unwrap();
            }
        }
        let refused = pool.try_submit(&tenants[3], Box::new(|| {}));
        assert!(refused.is_err(), "a fourth job fit in a queue of two");

        let (woke_tx, woke) = mpsc::sync_channel(1);
        let waker: Arc<dyn Wake> = Arc::new(Flag(woke_tx));
        pool.wake_when_space(&waker);
        pool.wake_when_space(&waker); // registered once
        assert_eq!(pool.shared.waiters.list.lock().unwrap().len(), 1);
        assert!(woke.try_recv().is_err(), "woken with the queue still full");
        gate.open();
        woke.recv_timeout(Duration::from_secs(20))
            .expect("never woken after a slot freed");
        let job = refused.err().unwrap();
        let mut job = Some(job);
        while let Some(j) = job.take() {
            if let Err(j) = pool.try_submit(&tenants[3], j) {
                job = Some(j);
                thread::yield_now();
            }
        }
    }

    #[test]
    fn a_guest_gets_less_than_the_whole_pool() {
        let share = |workers| PoolConfig { workers, queue: 64 }.guest_share();
        assert_eq!(
            [1, 2, 3, 4, 8, 16, 256].map(share),
            [1, 1, 2, 3, 6, 12, 192]
        );
    }

    #[test]
    fn a_tenant_past_its_share_is_refused_and_others_are_not() {
        let gate = Arc::new(Gate::default());
        let pool = Pool::new(PoolConfig {
            workers: 4,
            queue: 64,
        })
        .unwrap();
        let (a, b) = (pool.tenant(), pool.tenant());
        let held = |g: &Arc<Gate>| -> Job {
            let g = Arc::clone(g);
            Box::new(move || g.wait())
        };
        for _ in 0..3 {
            assert!(pool.try_submit(&a, held(&gate)).is_ok());
        }
        assert_eq!(pool.jobs_of(&a), 3);
        assert!(pool.try_submit(&a, held(&gate)).is_err(), "past a's share");
        // b's job runs on the worker a could not take, while a's are all held.
        let (tx, rx) = mpsc::channel();
        assert!(pool
            .try_submit(&b, Box::new(move || tx.send(()).unwrap()))
            .is_ok());
        rx.recv_timeout(Duration::from_secs(20))
            .expect("b's job never ran while a held its share");
        assert!(
            pool.try_submit(&a, held(&gate)).is_err(),
            "a still at its share"
        );
        gate.open();
    }

    #[test]
    fn tenants_are_served_round_robin() {
        // A pool of one worker gives a tenant a share of 1; to queue several jobs per
        // tenant and still see them run one at a time, take 8 workers and hold 7.
        let gate = Arc::new(Gate::default());
        let pool = Pool::new(PoolConfig {
            workers: 8,
            queue: 64,
        })
        .unwrap();
        let (started_tx, started) = mpsc::channel();
        let holders: Vec<Tenant> = (0..7).map(|_| pool.tenant()).collect();
        for t in &holders {
            let (g, s) = (Arc::clone(&gate), started_tx.clone());
            assert!(pool
                .try_submit(
                    t,
                    Box::new(move || {
                        s.send(()).unwrap();
                        g.wait();
                    })
                )
                .is_ok());
        }
        for _ in 0..7 {
            started.recv_timeout(Duration::from_secs(20)).unwrap();
        }
        // One worker left: hold it too, then queue a's three jobs before b's three.
        let last_gate = Arc::new(Gate::default());
        let blocker = pool.tenant();
        let (g, s) = (Arc::clone(&last_gate), started_tx.clone());
        assert!(pool
            .try_submit(
                &blocker,
                Box::new(move || {
                    s.send(()).unwrap();
                    g.wait();
                })
            )
            .is_ok());
        started.recv_timeout(Duration::from_secs(20)).unwrap();
        let (done_tx, done) = mpsc::channel();
        let (a, b) = (pool.tenant(), pool.tenant());
        for (tenant, name) in [(&a, "a"), (&b, "b")] {
            for i in 1..=3 {
                let d = done_tx.clone();
                let job: Job = Box::new(move || d.send(format!("{name}{i}")).unwrap());
                assert!(pool.try_submit(tenant, job).is_ok());
            }
        }
        // The one worker freed runs them all, in turn.
        last_gate.open();
        let order: Vec<String> = (0..6)
            .map(|_| done.recv_timeout(Duration::from_secs(20)).unwrap())
            .collect();
        gate.open();
        assert_eq!(order, ["a1", "b1", "a2", "b2", "a3", "b3"]);
    }
}
