//! Where accepted work runs: apart from the acknowledgements.
//!
//! `gantry serve` runs two Tokio runtimes. The front one takes requests
//! and socket messages, verifies, decodes and records them, and answers;
//! the work one runs what was accepted (deploys, builds, approvals,
//! replies) and the sandbox's servers. The work runtime's threads run at a
//! lower CPU priority (nice 10), so that when deploys saturate the cores an
//! acknowledgement still gets a core at once: the operating system, not
//! Tokio, keeps the two apart. Anything spawned from within work stays on
//! the work runtime.
//!
//! Without a work runtime (tests, `gantry demo`, `gantry run`), work is
//! spawned on the current runtime.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

/// CPU priority of work threads: lower than the front's (0).
pub const WORK_NICE: i32 = 10;

static WORK: OnceLock<Handle> = OnceLock::new();

/// The work runtime, running until dropped.
pub struct WorkRuntime {
    runtime: Option<Runtime>,
}

impl WorkRuntime {
    /// The runtime's handle, to run something on it.
    pub fn handle(&self) -> Option<&Handle> {
        self.runtime.as_ref().map(Runtime::handle)
    }
}

impl Drop for WorkRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropped from within the front runtime at shutdown: do not
            // block it waiting for work that will not finish.
            runtime.shutdown_background();
        }
    }
}

/// Starts the work runtime with `threads` workers at [`WORK_NICE`] and
/// makes [`spawn`] use it for the rest of the process.
pub fn start(threads: usize) -> Result<WorkRuntime, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("gantry-work")
        .on_thread_start(|| lower_priority(WORK_NICE))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the work runtime: {e}"))?;
    if WORK.set(runtime.handle().clone()).is_err() {
        return Err("the work runtime is already running".into());
    }
    Ok(WorkRuntime {
        runtime: Some(runtime),
    })
}

/// Runs `work` on the work runtime, or on the current one when there is
/// none.
pub fn spawn<F>(work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    match WORK.get() {
        Some(handle) => {
            handle.spawn(work);
        }
        None => {
            tokio::spawn(work);
        }
    }
}

/// Lowers the calling thread's CPU priority by `nice` (Linux: each thread
/// has its own). A failure leaves it as it was: work then competes with
/// acknowledgements on equal terms, which is slower, not wrong.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    // SAFETY: gettid and setpriority take plain integers, touch no memory
    // of ours, and affect only the calling thread.
    let done = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, nice)
    };
    if done != 0 {
        tracing::debug!(nice, "cannot lower a work thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn a_work_thread_runs_at_lower_priority() {
        let seen = std::thread::spawn(|| {
            super::lower_priority(super::WORK_NICE);
            // SAFETY: as above; reads the calling thread's priority.
            unsafe {
                *libc::__errno_location() = 0;
                libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
            }
        })
        .join()
        .unwrap();
        // Raising is refused without privileges, lowering never is; the
        // test process may already be niced.
        assert!(seen >= super::WORK_NICE, "priority {seen}");
    }
}
