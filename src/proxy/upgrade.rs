//! HTTP/1.1 Upgrade (WebSocket and friends): once the upstream answers 101,
//! both connections become a byte tunnel until either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::Level;

use crate::exchange::{exchange_event, LogIds};

/// Joins the client's and the upstream's upgraded connections and copies
/// bytes both ways. Runs detached; ends when either side closes. Its lines
/// carry the ids of the exchange that upgraded.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, ids: LogIds) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                exchange_event!(Level::DEBUG, &ids, error = %e, "upgrade handshake did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((to_upstream, to_client)) => exchange_event!(
                Level::DEBUG,
                &ids,
                to_upstream,
                to_client,
                "upgraded connection closed"
            ),
            Err(e) => exchange_event!(Level::DEBUG, &ids, error = %e, "upgraded connection failed"),
        }
    });
}
