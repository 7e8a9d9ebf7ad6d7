//! What a scenario can make the fake API server get wrong.

use std::time::Duration;

use super::controller::Breakage;
use super::store::{Key, Kind};
use super::write::{self, PatchKind};
use super::FakeKube;

/// A change another party makes to a Deployment's image.
#[derive(Debug, Clone)]
pub(super) struct ImageChange {
    pub(super) namespace: String,
    pub(super) deployment: String,
    pub(super) container: String,
    pub(super) image: String,
    pub(super) manager: String,
}

/// What a scenario asked the server to get wrong.
#[derive(Debug, Default)]
pub(super) struct Faults {
    pub(super) conflicts: usize,
    pub(super) forbidden: Vec<(String, String)>,
    pub(super) slow: Option<(String, Duration, usize)>,
    pub(super) throttle: Option<(usize, u64)>,
    pub(super) drop_watches_after: Option<usize>,
    pub(super) broken: Vec<(String, Breakage)>,
    pub(super) before_patch: Vec<ImageChange>,
}

impl Faults {
    pub(super) fn breakage(&self, image: &str) -> Option<Breakage> {
        self.broken
            .iter()
            .find(|(s, _)| image.contains(s.as_str()))
            .map(|(_, b)| *b)
    }
}

impl FakeKube {
    fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.shared.lock().faults);
    }

    /// The next `n` PATCH requests get 409 Conflict without being applied.
    pub fn inject_conflicts(&self, n: usize) {
        self.faults(|f| f.conflicts = n);
    }

    /// `verb` (get, list, watch, patch, create, delete) on `resource` (plural) gets 403.
    pub fn forbid(&self, verb: &str, resource: &str) {
        self.faults(|f| f.forbidden.push((verb.into(), resource.into())));
    }

    /// The next `requests` requests with `verb` (get, list, patch, create,
    /// delete; `*` for any but watch) are answered after `delay`; their
    /// effect is applied at once, as when an answer is lost on the way back.
    pub fn slow(&self, verb: &str, delay: Duration, requests: usize) {
        self.faults(|f| f.slow = Some((verb.into(), delay, requests)));
    }

    /// The next `requests` requests get 429 with `Retry-After: seconds`.
    pub fn throttle(&self, requests: usize, seconds: u64) {
        self.faults(|f| f.throttle = Some((requests, seconds)));
    }

    /// Every watch connection drops after sending `events` events (0 = never).
    pub fn drop_watches_after(&self, events: usize) {
        self.faults(|f| f.drop_watches_after = (events > 0).then_some(events));
    }

    /// Pods whose image contains `text` crash-loop and never become ready.
    pub fn break_image(&self, text: &str) {
        self.faults(|f| f.broken.push((text.into(), Breakage::CrashLoop)));
    }

    /// Pods whose image contains `text` cannot pull it.
    pub fn unpullable_image(&self, text: &str) {
        self.faults(|f| f.broken.push((text.into(), Breakage::ImagePull)));
    }

    /// Right before the next PATCH to that Deployment is handled, `manager`
    /// sets its container's image: a concurrent change.
    pub fn change_before_next_patch(
        &self,
        namespace: &str,
        deployment: &str,
        container: &str,
        image: &str,
        manager: &str,
    ) {
        let change = ImageChange {
            namespace: namespace.into(),
            deployment: deployment.into(),
            container: container.into(),
            image: image.into(),
            manager: manager.into(),
        };
        self.faults(|f| f.before_patch.push(change));
    }

    /// `manager` sets a Deployment's container image now (like `kubectl set image`).
    pub fn set_image_as(
        &self,
        manager: &str,
        namespace: &str,
        deployment: &str,
        container: &str,
        image: &str,
    ) {
        let key = Key::new(Kind::Deployment, namespace, deployment);
        let body = write::image_patch(container, image);
        self.write(&key, PatchKind::Strategic, manager, &body);
    }
}
