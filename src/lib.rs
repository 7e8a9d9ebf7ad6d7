//! Gantry: a ChatOps bot for delivery workflows.
//!
//! A person types `deploy feat-x to dev` in chat or `/deploy dev` on a pull
//! request; Gantry parses it with the closed grammar in `commands/`, checks
//! who they are against `config/gantry.toml`, and drives the delivery.
#![warn(missing_docs)]

pub mod adapters;
pub mod chat;
pub mod cli;
pub mod command;
pub mod config;
pub mod engine;
pub mod inbound;
pub mod json_keys;
pub mod logging;
pub mod names;
pub mod policy;
pub mod sandbox;
pub mod server;
pub mod sockets;
pub mod store;
pub mod tls;
pub mod work;
