//! What Discord's gateway client and Slack's Socket Mode client share: a
//! session of JSON messages over a WebSocket that ends either for good or
//! to be tried again, and the loop that reconnects with capped exponential
//! backoff.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Longest wait between reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long the server's greeting may take after connecting.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
/// The first wait, and the wait again once a session got going.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Reconnect after a pause.
    Retry(String),
    /// The other side closed with a code that is not final; reconnect
    /// after a pause (the code tells a client whether it may resume).
    Closed(u16, String),
    /// Give up: the platform refused Gantry's credentials for good.
    Fatal(String),
}

/// The wait before the next attempt; a session resets it once it is up.
#[derive(Debug)]
pub(crate) struct Backoff(AtomicU64);

impl Backoff {
    /// The session is up: the next failure waits the shortest time again.
    pub(crate) fn reset(&self) {
        self.0.store(millis(FIRST_BACKOFF), Ordering::Relaxed);
    }

    fn take(&self) -> Duration {
        let now = self.0.load(Ordering::Relaxed);
        let next = millis((Duration::from_millis(now) * 2).min(MAX_BACKOFF));
        self.0.store(next, Ordering::Relaxed);
        Duration::from_millis(now)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs `session` again and again, pausing between attempts, until it ends
/// with [`Ended::Fatal`]. `name` prefixes what is logged.
pub(crate) async fn reconnecting<F, Fut>(name: &str, mut session: F)
where
    F: FnMut(Arc<Backoff>) -> Fut,
    Fut: Future<Output = Ended>,
{
    let backoff = Arc::new(Backoff(AtomicU64::new(millis(FIRST_BACKOFF))));
    loop {
        match session(backoff.clone()).await {
            Ended::Fatal(why) => {
                tracing::error!(transport = name, reason = %why, "stopped");
                return;
            }
            Ended::Retry(why) | Ended::Closed(_, why) => {
                let wait = backoff.take();
                tracing::warn!(transport = name, reason = %why, wait_ms = wait.as_millis() as u64, "reconnecting");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The next JSON text message, skipping pings, anything unparsable and
/// anything with a key twice (logged), or why the connection ended; `fatal` says which close codes end for good.
pub(crate) async fn next_payload<S>(read: &mut S, fatal: fn(u16) -> bool) -> Result<Value, Ended>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let text = match read.next().await {
            None => return Err(Ended::Retry("connection closed".into())),
            Some(Err(e)) => return Err(Ended::Retry(format!("connection failed: {e}"))),
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1000, String::new()));
                let why = format!("closed with {code} {reason}");
                return Err(if fatal(code) {
                    Ended::Fatal(why)
                } else {
                    Ended::Closed(code, why)
                });
            }
            Some(Ok(_)) => continue,
        };
        // Slack's envelopes and Discord's frames are strict JSON too: a
        // message with a key twice is dropped, never half-read.
        if let Err(e) = crate::json_keys::check_unique_keys(text.as_bytes()) {
            tracing::warn!(error = %e, "dropped a websocket message");
            continue;
        }
        if let Ok(value) = serde_json::from_str(&text) {
            return Ok(value);
        }
    }
}

/// Asks a platform's REST API where to connect (`what` names the call in
/// errors): `build` makes the request on a client with a 10 s timeout.
/// A 401 ends the client (the token is wrong); any other failure is
/// retried. Answers the JSON body.
pub(crate) async fn ask_for_url(
    what: &str,
    build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
) -> Result<Value, Ended> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Ended::Retry(e.to_string()))?;
    let answer = build(&client)
        .send()
        .await
        .map_err(|e| Ended::Retry(format!("{what}: {e}")))?;
    let status = answer.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(Ended::Fatal(format!("{what}: 401, the token is wrong")));
    }
    if !status.is_success() {
        return Err(Ended::Retry(format!("{what}: {status}")));
    }
    answer
        .json()
        .await
        .map_err(|e| Ended::Retry(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_with_a_key_twice_are_dropped() {
        let frames = [
            r#"{"op":0,"t":"MESSAGE_REACTION_ADD","t":"READY","d":{}}"#,
            r#"{"op":0,"d":{"emoji":{"name":"x","name":"y"}}}"#,
            r#"{"op":0,"t":"MESSAGE_REACTION_ADD","d":{}}"#,
        ];
        let mut read = futures::stream::iter(
            frames
                .map(|f| Ok(Message::text(f)))
                .into_iter()
                .collect::<Vec<_>>(),
        );
        let first = next_payload(&mut read, |_| false).await;
        assert!(
            matches!(&first, Ok(v) if v["t"] == "MESSAGE_REACTION_ADD" && v["d"] == serde_json::json!({})),
            "{first:?}"
        );
        assert!(matches!(
            next_payload(&mut read, |_| false).await,
            Err(Ended::Retry(_))
        ));
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_and_resets() {
        let b = Backoff(AtomicU64::new(millis(FIRST_BACKOFF)));
        let waits: Vec<u64> = (0..8).map(|_| b.take().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.take(), FIRST_BACKOFF);
    }
}
