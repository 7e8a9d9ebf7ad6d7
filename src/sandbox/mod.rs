//! The sandbox: everything Gantry talks to, simulated on this machine, so
//! the whole flow runs without any account.

pub mod apps;
pub mod discord;
pub mod generated;
pub mod git_host;
pub mod git_repo;
pub mod github;
pub mod kube;
pub mod prometheus;
pub mod registry;
pub mod seed;
pub mod slack;
pub mod stack;
pub mod verification;
