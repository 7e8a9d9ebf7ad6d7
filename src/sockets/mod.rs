//! The inbound transports Gantry opens itself, instead of taking requests
//! on a public URL: Slack's Socket Mode and Discord's gateway. Each keeps
//! its WebSocket up (hello, heartbeats, resume, backoff), hands what
//! arrives to the inbound decoders and the one dispatch, and acknowledges.
//! Like the HTTP routes, they call `inbound`; `inbound` never calls them.

pub mod discord;
pub mod slack;
mod websocket;
