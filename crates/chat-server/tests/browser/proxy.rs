//! A TCP proxy in front of the server that a test can cut, to take one browser off the
//! network.
//!
//! Why not chromedriver's network emulation (`POST /session/{id}/chromium/network_conditions`
//! with `offline: true`, or CDP `Network.emulateNetworkConditions`): in Chromium 156 it fails
//! new requests and new WebSockets, but an open WebSocket stays open, its frames held and
//! handed over when the network is back, so the client never has to reconnect and catch up.
//! A cut here closes the browser's connections (its socket sees a 1006 close, as after a real
//! drop) and refuses new ones until the network is back. Hand-written because it is twenty
//! lines over tokio's `copy_bidirectional` and no crate offers a proxy that can be cut from a
//! test.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A proxy on a loopback port forwarding to the server at `upstream`.
pub struct Proxy {
    pub address: String,
    state: Arc<Mutex<State>>,
    accepting: AbortHandle,
}

#[derive(Default)]
struct State {
    cut: bool,
    connections: Vec<AbortHandle>,
}

impl Proxy {
    /// Starts forwarding a new loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a port");
        let address = format!(
            "http://{}",
            listener.local_addr().expect("the proxy has an address")
        );
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = upstream.to_owned();
        let shared = state.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut state = shared.lock().expect("the proxy state is not poisoned");
                if state.cut {
                    // Dropped at once: the browser sees its connection closed.
                    continue;
                }
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                state.connections.retain(|c| !c.is_finished());
                state.connections.push(connection.abort_handle());
            }
        })
        .abort_handle();
        Self {
            address,
            state,
            accepting,
        }
    }

    /// Takes the network away: every open connection is closed, new ones are refused.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("the proxy state is not poisoned");
        state.cut = true;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    /// Gives the network back.
    pub fn restore(&self) {
        self.state
            .lock()
            .expect("the proxy state is not poisoned")
            .cut = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}
