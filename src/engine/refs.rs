//! Ref resolution, the same for every verb and for the re-check before
//! acting: a branch, tag, full or short SHA or `#123` to the commit it
//! points at on the Git host, and that commit to the digest of the image
//! built from it.

use super::{Engine, PortError};
use crate::command::GitRef;
use crate::config::App;
use crate::names::{Digest, Sha};

/// Which lookup failed.
pub(super) enum Unresolved {
    /// The Git host could not resolve the ref.
    Ref(PortError),
    /// The registry has no image for the commit.
    Image(PortError),
}

impl Engine {
    /// The commit `reference` points at in the app's repository now.
    pub(super) async fn resolve_ref(
        &self,
        app: &App,
        reference: &GitRef,
    ) -> Result<Sha, PortError> {
        self.ports
            .forge
            .resolve(&app.repo.to_string(), reference)
            .await
    }

    /// The commit `reference` points at now and the digest of the app's
    /// image built from it, tagged as the app's tag template says (with the
    /// branch name when the ref is a branch).
    pub(super) async fn resolve_image(
        &self,
        app: &App,
        reference: &GitRef,
    ) -> Result<(Sha, Digest), Unresolved> {
        let sha = self
            .resolve_ref(app, reference)
            .await
            .map_err(Unresolved::Ref)?;
        let branch = match reference {
            GitRef::Name(name) => name.as_str(),
            _ => "",
        };
        let tag = app.tag_template.render(sha.as_str(), branch);
        let digest = self
            .ports
            .registry
            .digest(&app.image, &tag)
            .await
            .map_err(Unresolved::Image)?;
        Ok((sha, digest))
    }
}
