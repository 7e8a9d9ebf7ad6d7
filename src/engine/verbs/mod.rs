//! One file per verb: what each command does once it has been parsed and
//! the person behind it is known. The machinery they share (requests and
//! their states, progress messages, the audit trail, locks, rollouts) lives
//! one level up.

pub(super) mod approvals;
pub(super) mod build;
pub(super) mod deploy;
pub(super) mod lock;
pub(super) mod promote;
pub(super) mod queries;
pub(super) mod rollback;
pub(super) mod teardown;
pub(super) mod verifying;
