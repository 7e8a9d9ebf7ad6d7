//! Checks how requests flow into an environment: the soak time a
//! promotion needs.

use super::{Checked, Checker};
use crate::config::locate::KeyPath;
use crate::config::model::Environment;

/// Checks `soak` of every environment.
pub(super) fn check(ck: &Checker<'_>, base: &KeyPath, envs: &[Environment]) -> Checked<()> {
    for env in envs {
        let path = base.key(env.name.as_str());
        let Some(soak) = env.soak else { continue };
        if env.promote_from.is_none() {
            return Err(ck.err(
                &path.key("soak"),
                "soak is how long a release must have run in promote_from, and this environment has no promote_from",
            ));
        }
        if soak.is_zero() {
            return Err(ck.err(
                &path.key("soak"),
                "soak must be longer than 0s; leave it out for no soak time",
            ));
        }
        if !env.approvals.rules.is_empty() && soak > env.approvals.expires {
            return Err(ck.err(
                &path.key("soak"),
                format!(
                    "soak ({}) may not be longer than approvals.expires ({}); shorten soak or lengthen approvals.expires",
                    humantime::format_duration(soak),
                    humantime::format_duration(env.approvals.expires),
                ),
            ));
        }
    }
    Ok(())
}
