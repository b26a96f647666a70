//! A fixed set of worker threads behind a bounded job queue, shared by every connection.
//!
//! The operations block (file I/O on dom0's disks), so a connection's loop never runs
//! them itself: it hands each request to the pool and goes back to its ring. Several
//! workers run at once, so a slow request (a big read from a cold disk) holds one worker
//! while fast ones (a `Ping`) are answered by the others.
//!
//! # Bounds and back-pressure
//!
//! * [`PoolConfig::workers`] threads, started once, never more.
//! * At most [`PoolConfig::queue`] jobs waiting. [`Pool::try_submit`] never blocks: when
//!   the queue is full it gives the job back, the connection keeps it (one job, already
//!   counted in its in-flight limit) and stops taking requests from its ring. The
//!   guest's requests then wait in the ring, and when that is full, in the guest: the
//!   back-pressure travels to the source and nothing grows.
//! * [`Pool::wake_when_space`] registers a connection's [`Wake`] to be called when a
//!   worker next takes a job off the queue (which frees a slot), so a stalled connection
//!   sleeps instead of polling. At most one registration per waker is kept, so the list
//!   is bounded by the number of connections.
//!
//! A job that panics takes the daemon down (the workspace builds with `panic = "abort"`):
//! the operations return named statuses instead of panicking.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TrySendError};

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
    /// Jobs that may wait for a worker (at least 1).
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

    /// Called by a worker right after it took a job, i.e. freed a slot.
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

/// The worker pool; dropping it lets the workers finish the queued jobs, then joins them.
pub struct Pool {
    sender: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    waiters: Arc<SpaceWaiters>,
    config: PoolConfig,
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
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(config.queue);
        let mut pool = Pool {
            sender: Some(sender),
            workers: Vec::with_capacity(config.workers),
            waiters: Arc::default(),
            config,
        };
        for i in 0..config.workers {
            let receiver: Receiver<Job> = receiver.clone();
            let waiters = Arc::clone(&pool.waiters);
            let worker = thread::Builder::new()
                .name(format!("shadow-worker-{i}"))
                .spawn(move || {
                    for job in receiver.iter() {
                        waiters.wake_all();
                        job();
                    }
                })?; // on error, dropping `pool` stops and joins the started ones
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// The bounds the pool was built with.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// Queues a job if a slot is free; gives it back otherwise (never blocks).
    pub fn try_submit(&self, job: Job) -> Result<(), Job> {
        let Some(sender) = &self.sender else {
            return Err(job);
        };
        sender.try_send(job).map_err(|e| match e {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }

    /// Calls `waker` once a worker next takes a job off the queue. Register *before*
    /// retrying [`Self::try_submit`], so a slot freed in between is not missed.
    pub fn wake_when_space(&self, waker: &Arc<dyn Wake>) {
        self.waiters.register(waker);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends each worker's loop once the queue is empty.
        self.sender = None;
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
        let mut submitted = 0;
        while submitted < 100 {
            let d = Arc::clone(&done);
            match pool.try_submit(Box::new(move || {
                d.fetch_add(1, Ordering::SeqCst);
            })) {
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
        // One job holds the only worker; two more fill the queue.
        for i in 0..3 {
            let (g, s) = (Arc::clone(&gate), started_tx.clone());
            let job: Job = Box::new(move || {
                s.send(()).unwrap();
                g.wait();
            });
            assert!(pool.try_submit(job).is_ok(), "queue refused job {i}");
            if i == 0 {
                // The first job must be running before the others fill the queue.
                started.recv_timeout(Duration::from_secs(20)).unwrap();
            }
        }
        let refused = pool.try_submit(Box::new(|| {}));
        assert!(refused.is_err(), "a fourth job fit in a queue of two");

        let (woke_tx, woke) = mpsc::sync_channel(1);
        let waker: Arc<dyn Wake> = Arc::new(Flag(woke_tx));
        pool.wake_when_space(&waker);
        pool.wake_when_space(&waker); // registered once
        assert_eq!(pool.waiters.list.lock().unwrap().len(), 1);
        assert!(woke.try_recv().is_err(), "woken with the queue still full");
        gate.open();
        woke.recv_timeout(Duration::from_secs(20))
            .expect("never woken after a slot freed");
        let job = refused.err().unwrap();
        let mut job = Some(job);
        while let Some(j) = job.take() {
            if let Err(j) = pool.try_submit(j) {
                job = Some(j);
                thread::yield_now();
            }
        }
    }
}
