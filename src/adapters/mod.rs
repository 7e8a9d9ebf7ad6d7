//! Real clients behind the engine's ports.

pub mod kube;
pub mod notify;
pub mod registry;
pub mod slack;
