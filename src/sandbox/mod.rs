//! The sandbox: everything Gantry talks to, simulated on this machine, so
//! the whole flow runs without any account.

pub mod seed;
pub mod world;

pub use seed::seed;
pub use world::{World, WorldState};
