//! The process itself: work spread over every core, memory handed back
//! between passes, and the failpoints crash tests stop a run at. Uses no
//! other module of the crate.

/// A named point where a test can stop the process: with the environment
/// variable `SCORECARD_FAILPOINT` set to `name`, the run announces it on
/// stderr and waits there to be killed. Crash tests use it to kill a run
/// (SIGKILL) at a known step; it is never set in production.
pub fn failpoint(name: &str) {
    if std::env::var("SCORECARD_FAILPOINT").as_deref() == Ok(name) {
        eprintln!("failpoint {name}: waiting to be killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// Runs `job(0)` .. `job(n - 1)` on one thread per core, each thread taking
/// the next job when it is done with one, and returns the results in job
/// order. After a job fails no new job starts, and the first error (by job
/// order) is returned. Plain threads rather than rayon: jobs may run polars
/// queries, which use polars' own thread pool.
pub fn on_every_core<T: Send>(
    n: usize,
    job: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    // The jobs' numbers are what is made: nothing waits on the caller.
    on_every_core_as_made(n, Ok, |i, _| job(i))
}

/// Makes `make(0)` .. `make(n - 1)` one after another on the calling
/// thread, and hands each to `job` on one of a thread per core as soon as
/// one is free, while the next is made; returns `job`'s results in order.
/// At most one made value waits for a free thread, so memory holds about
/// one per core plus one. After a failure nothing new is made or started,
/// and the first error (by order) is returned. For work whose first half
/// uses every core by itself (a polars query) and whose second half is
/// plain Rust on one core.
pub fn on_every_core_as_made<M: Send, T: Send>(
    n: usize,
    mut make: impl FnMut(usize) -> anyhow::Result<M>,
    job: impl Fn(usize, M) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let failed = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, M)>(0);
    let rx = std::sync::Mutex::new(rx);
    let mut done: Vec<(usize, anyhow::Result<T>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores.min(n))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    // Receives until the sender is gone; after a failure
                    // what arrives is dropped, so the sender never waits
                    // for a thread that has stopped.
                    loop {
                        // The lock is held while waiting, not while working.
                        let next = rx.lock().expect("no job panics holding it").recv();
                        let Ok((i, made)) = next else { break };
                        if failed.load(Ordering::Relaxed) {
                            continue;
                        }
                        let result = job(i, made);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        mine.push((i, result));
                    }
                    mine
                })
            })
            .collect();
        let mut done = Vec::new();
        for i in 0..n {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            match make(i) {
                Ok(made) => {
                    if tx.send((i, made)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    done.push((i, Err(e)));
                    break;
                }
            }
        }
        drop(tx);
        for w in workers {
            done.extend(w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Hands memory the process has freed back to the system at once. The
/// allocator returns freed pages only after a delay (ten seconds), so the
/// pages a large pass freed would still count in the resident peak of the
/// next one.
pub fn release_freed_memory() {
    #[cfg(not(target_env = "msvc"))]
    {
        // "arena.4096.purge": purge every arena (4096 is jemalloc's
        // MALLCTL_ARENAS_ALL); it takes and gives no value.
        const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
        // SAFETY: the name is NUL-terminated and the control takes no old or
        // new value, so null pointers with zero lengths are what it expects;
        // purging only returns unused pages and touches no live allocation.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_ALL.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        debug_assert_eq!(status, 0, "jemalloc refused {PURGE_ALL:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A job that fails for job 3 and takes two milliseconds otherwise.
    fn job_3_fails(i: usize) -> anyhow::Result<usize> {
        if i == 3 {
            anyhow::bail!("job 3 failed");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        Ok(i)
    }

    #[test]
    fn on_every_core_returns_results_in_job_order() {
        // Job i takes longer the smaller i is, so later jobs finish first.
        let squares = on_every_core(40, |i| {
            std::thread::sleep(std::time::Duration::from_micros((40 - i as u64) * 50));
            Ok(i * i)
        })
        .unwrap();
        assert_eq!(squares, (0..40).map(|i| i * i).collect::<Vec<_>>());
        assert!(on_every_core(0, Ok).unwrap().is_empty());
    }

    #[test]
    fn on_every_core_as_made_makes_in_order_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let mut made = Vec::new();
        let squares = on_every_core_as_made(
            40,
            |i| {
                assert_eq!(std::thread::current().id(), caller);
                made.push(i);
                Ok(i)
            },
            |i, m| {
                assert_eq!(i, m);
                assert_ne!(std::thread::current().id(), caller);
                // Earlier values take longer, so later ones finish first.
                std::thread::sleep(std::time::Duration::from_micros((40 - i as u64) * 50));
                Ok(m * m)
            },
        )
        .unwrap();
        assert_eq!(made, (0..40).collect::<Vec<_>>());
        assert_eq!(squares, (0..40).map(|i| i * i).collect::<Vec<_>>());
        assert!(on_every_core_as_made(0, Ok, |_, m: usize| Ok(m))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn on_every_core_as_made_runs_jobs_at_the_same_time() {
        if std::thread::available_parallelism().map_or(1, |c| c.get()) < 2 {
            return;
        }
        // Job 0 waits (up to ten seconds) for job 1 to start: it can only
        // see it if the two run at once.
        let started = std::sync::atomic::AtomicBool::new(false);
        let saw = on_every_core_as_made(2, Ok, |i, _| {
            if i == 1 {
                started.store(true, Ordering::SeqCst);
                return Ok(true);
            }
            let t = std::time::Instant::now();
            while !started.load(Ordering::SeqCst) && t.elapsed().as_secs() < 10 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(started.load(Ordering::SeqCst))
        })
        .unwrap();
        assert_eq!(saw, vec![true, true]);
    }

    #[test]
    fn on_every_core_as_made_stops_after_a_failure() {
        // A job fails: at most a few more are made (those made while it
        // ran), and its error is returned.
        let made = AtomicUsize::new(0);
        let err = on_every_core_as_made(
            1000,
            |i| {
                made.fetch_add(1, Ordering::Relaxed);
                Ok(i)
            },
            |i, _| job_3_fails(i),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "job 3 failed");
        let made = made.load(Ordering::Relaxed);
        assert!((4..50).contains(&made), "{made} made");
        // Making 5 fails: nothing after it is made. When job 4 fails as
        // well, its error is the one returned (the first by order),
        // whichever of the two failures came first.
        for job_fails in [None, Some(4)] {
            let mut made = Vec::new();
            let err = on_every_core_as_made(
                1000,
                |i| {
                    made.push(i);
                    if i == 5 {
                        anyhow::bail!("making 5 failed");
                    }
                    Ok(i)
                },
                |i, _| {
                    if Some(i) == job_fails {
                        anyhow::bail!("job {i} failed");
                    }
                    Ok(i)
                },
            )
            .unwrap_err();
            match job_fails {
                None => {
                    assert_eq!(err.to_string(), "making 5 failed");
                    assert_eq!(made, (0..=5).collect::<Vec<_>>());
                }
                Some(_) => {
                    assert_eq!(err.to_string(), "job 4 failed");
                    assert!(
                        made == (0..=4).collect::<Vec<_>>() || made == (0..=5).collect::<Vec<_>>()
                    );
                }
            }
        }
    }

    #[test]
    fn on_every_core_stops_taking_jobs_after_a_failure() {
        let started = AtomicUsize::new(0);
        let err = on_every_core(1000, |i| {
            started.fetch_add(1, Ordering::Relaxed);
            job_3_fails(i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "job 3 failed");
        // Jobs 0-3, and at most a few that other threads had taken while
        // job 3 ran: far from all 1000.
        let started = started.load(Ordering::Relaxed);
        assert!((4..50).contains(&started), "{started} jobs started");
    }
}
