//! Presence on this node: the hub's changes handed to the domain's presence service, and
//! the periodic flush that announces them (coalesced: see
//! [`chat_domain::presence::Coalescer`]).

use std::sync::Arc;
use std::time::Duration;

use chat_domain::UserId;
use chat_domain::presence::PresenceStatus;
use chat_domain::service::ChatServices;

use super::Hub;
use super::hub::PresenceListener;

/// Notes each change of a user's status on this node for the next flush, and records their
/// last-seen time when their last socket here closes (on the blocking pool: the call comes
/// from a session's task).
pub struct PresenceNotes {
    services: ChatServices,
    /// Whether changes are announced (noted for [`flush_presence`]); last-seen times are
    /// recorded either way.
    announce: bool,
}

impl PresenceNotes {
    pub fn new(services: ChatServices, announce: bool) -> Self {
        Self { services, announce }
    }
}

impl PresenceListener for PresenceNotes {
    fn changed(&self, user: UserId, before: PresenceStatus, after: PresenceStatus) {
        let announce = self.announce;
        let runtime = tokio::runtime::Handle::try_current();
        let (PresenceStatus::Offline, Ok(runtime)) = (after, runtime) else {
            if announce {
                self.services.presence.note(user, before);
            }
            return;
        };
        // Noted once the time is written, so that the event carries it.
        let services = self.services.clone();
        runtime.spawn_blocking(move || {
            if let Err(error) = services.presence.last_socket_closed(user) {
                tracing::warn!(%error, "recording a last-seen time failed");
            }
            if announce {
                services.presence.note(user, before);
            }
        });
    }
}

/// How often the flush runs for a coalescing window: a quarter of it, between 50 ms and
/// one second, so an event waits at most that long past its window.
pub fn flush_interval(window: chrono::Duration) -> Duration {
    let quarter = window.to_std().unwrap_or_default() / 4;
    quarter.clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Announces presence changes every [`flush_interval`] until the hub shuts down. A flush
/// that fails is tried again at the next tick (the service keeps what it could not send).
pub async fn flush_presence(hub: Arc<Hub>, services: ChatServices) {
    let mut tick = tokio::time::interval(flush_interval(services.presence.window()));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = hub.shutting_down();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopping => return,
        }
        let services = services.clone();
        match tokio::task::spawn_blocking(move || services.presence.flush()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "announcing presence failed; retrying"),
            Err(error) => tracing::warn!(%error, "the presence flush did not run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_runs_four_times_a_window_within_bounds() {
        let interval = |ms| flush_interval(chrono::Duration::milliseconds(ms));
        assert_eq!(interval(5_000), Duration::from_millis(1_000));
        assert_eq!(interval(2_000), Duration::from_millis(500));
        assert_eq!(interval(0), Duration::from_millis(50));
    }
}
