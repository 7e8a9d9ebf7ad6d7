//! `promote [<app>] from <env> to <env>`: what Gantry last deployed
//! successfully in the source environment, pinned when the request is made.

use crate::config::App;
use crate::engine::request::Pins;
use crate::engine::Engine;
use crate::names::{Digest, EnvName};

impl Engine {
    /// Pins a promotion to the commit and digest of the newest successful
    /// deploy in `from`.
    pub(in crate::engine) fn pin_promote(
        &self,
        app: &App,
        from: &EnvName,
        previous: Option<Digest>,
    ) -> Result<Pins, String> {
        let source = self.last_good(app, from.as_str(), None).ok_or_else(|| {
            format!(
                "Gantry has no successful deploy of {} in {from} to promote",
                app.name
            )
        })?;
        let sha = source.sha.ok_or("the source deploy has no commit")?;
        Ok(Pins {
            sha,
            digest: source.digest,
            previous,
        })
    }
}
