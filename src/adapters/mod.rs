//! Real clients behind the engine's ports.

pub mod discord;
pub mod github;
pub mod kube;
pub mod notify;
pub mod probe;
pub mod registry;
pub mod retry;
pub mod slack;
pub mod wiring;
