//! Presence: whether a user is `online` (a socket open on some node), `away` (every open
//! socket of theirs said so) or `offline` (no socket; then `last_seen_at`, when their last
//! socket closed), who may see it, and the coalescing that keeps a reconnect storm from
//! becoming a storm of presence events.
//!
//! Visibility (decided here, used by REST and the events alike): a user always sees their
//! own presence; another user's only when the two share a conversation (any kind) and the
//! other has not blocked them. `last_seen_at` is shown only when neither side hides it: a
//! user who hides theirs ([`LastSeen::hide_last_seen`]) sees nobody else's either.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::UserId;

/// What others see of a user's connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceStatus {
    /// At least one socket open that has not said it is away.
    Online,
    /// Sockets open, every one of them away.
    Away,
    /// No socket open on any live node.
    Offline,
}

impl PresenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }

    /// The status of a user with `open` sockets of which `away` said they are away.
    pub fn of_sockets(open: usize, away: usize) -> Self {
        if open == 0 {
            PresenceStatus::Offline
        } else if away >= open {
            PresenceStatus::Away
        } else {
            PresenceStatus::Online
        }
    }
}

/// One user's presence as one viewer may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub user_id: UserId,
    pub status: PresenceStatus,
    /// When the user's last socket closed; `None` while online or away, when they never
    /// connected, or when hidden from this viewer.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// What the store keeps of a user's presence: when their last socket closed, and whether
/// they hide that time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSeen {
    pub user_id: UserId,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub hide_last_seen: bool,
}

impl LastSeen {
    /// A user nothing was stored for yet.
    pub fn unknown(user_id: UserId) -> Self {
        Self {
            user_id,
            last_seen_at: None,
            hide_last_seen: false,
        }
    }
}

/// The presence of `target` for `viewer`, given that the viewer may see it at all.
/// `last_seen_at` is shown only for an offline user, and only when neither the target nor
/// (for another user) the viewer hides it.
pub fn view(
    target: &LastSeen,
    status: PresenceStatus,
    viewer_hides: bool,
    viewer: UserId,
) -> Presence {
    let own = viewer == target.user_id;
    let shown = own || !(target.hide_last_seen || viewer_hides);
    Presence {
        user_id: target.user_id,
        status,
        last_seen_at: (status == PresenceStatus::Offline && shown)
            .then_some(target.last_seen_at)
            .flatten(),
    }
}

/// Presence events per user at most once per window; the latest state wins.
///
/// A change is noted with [`Self::note`] and held for the window: [`Self::due`] names the
/// users whose first change not yet announced is at least a window old. The caller then
/// reads each one's current status and announces it only if it differs from the one the
/// audience last saw ([`Self::announced`]): a user who drops and comes back within the
/// window is announced nothing at all, which is what turns a reconnect storm into silence.
/// Since a change waits a whole window after the announcement before it, announcements of
/// one user are at least a window apart. With a window of zero every change is due at
/// once.
///
/// Going offline waits longer: a user whose change is due while they are offline is held
/// until the change is [`Self::with_offline_after`] old (30 s in the server), and announced
/// only if still offline then. A reconnect storm whose clients take longer than the window
/// to come back (19,000 users took 22 s on the 2-core machine of docs/benchmarks.md) is then
/// still silent, as chat apps that show a dropped user as online for a while are; reads of
/// presence over REST are never held back. Pure state, no clock of its own: the caller
/// passes the time, so tests run on a fake one.
#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    offline_after: Duration,
    users: HashMap<UserId, Slot>,
}

#[derive(Debug)]
struct Slot {
    /// The status the audience last saw: the last one announced, or the one before the
    /// first change noted since.
    announced: PresenceStatus,
    /// When the first change not yet announced was noted, and when it is due; `None` when
    /// nothing waits.
    pending: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A user whose change is due (see [`Coalescer::due`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub user: UserId,
    /// What the audience last saw.
    pub last: PresenceStatus,
    /// When the change was first noted.
    pub since: DateTime<Utc>,
}

impl Coalescer {
    pub fn new(window: Duration) -> Self {
        Self {
            window: window.max(Duration::zero()),
            offline_after: Duration::zero(),
            users: HashMap::new(),
        }
    }

    /// Holds a change to offline until it is `offline_after` old (never less than the
    /// window).
    pub fn with_offline_after(mut self, offline_after: Duration) -> Self {
        self.offline_after = offline_after.max(Duration::zero());
        self
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Notes at `now` that `user`'s presence may have changed; `before` is their status
    /// just before the change, which the audience is taken to have seen when nothing of
    /// theirs is waiting already.
    pub fn note(&mut self, user: UserId, before: PresenceStatus, now: DateTime<Utc>) {
        let window = self.window;
        self.users
            .entry(user)
            .or_insert(Slot {
                announced: before,
                pending: None,
            })
            .pending
            .get_or_insert((now, now + window));
    }

    /// The users whose change may be announced at `now`, each with the status the audience
    /// last saw. They wait no more; the caller reports what it announced with
    /// [`Self::announced`]. Users with nothing waiting are forgotten (their next change
    /// brings its own `before`), so the state holds only users changing now.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut due = Vec::new();
        self.users.retain(|user, slot| match slot.pending {
            Some((since, at)) if now >= at => {
                due.push(Due {
                    user: *user,
                    last: slot.announced,
                    since,
                });
                false
            }
            Some(_) => true,
            None => false,
        });
        due
    }

    /// What to announce for a due user whose status is now `status`: nothing when the
    /// audience saw it already, nothing yet when it is offline and the change is younger than
    /// the offline wait (the user is held until then), else the status.
    pub fn decide(
        &mut self,
        due: Due,
        status: PresenceStatus,
        now: DateTime<Utc>,
    ) -> Option<PresenceStatus> {
        if status == due.last {
            return None;
        }
        let until = due.since + self.offline_after;
        if status == PresenceStatus::Offline && now < until {
            self.users.insert(
                due.user,
                Slot {
                    announced: due.last,
                    pending: Some((due.since, until)),
                },
            );
            return None;
        }
        Some(status)
    }

    /// Records that `status` was announced for `user` (or is what the audience saw): a
    /// change noted meanwhile is compared with it.
    pub fn announced(&mut self, user: UserId, status: PresenceStatus) {
        if let Some(slot) = self.users.get_mut(&user) {
            slot.announced = status;
        }
    }

    /// Users tracked now (with a change waiting).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use PresenceStatus::{Away, Offline, Online};

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    /// Runs one flush as the service does: announces what differs from what was seen.
    fn flush(
        coalescer: &mut Coalescer,
        now: DateTime<Utc>,
        current: impl Fn(UserId) -> PresenceStatus,
    ) -> Vec<(UserId, PresenceStatus)> {
        let mut sent = Vec::new();
        for due in coalescer.due(now) {
            if let Some(status) = coalescer.decide(due, current(due.user), now) {
                coalescer.announced(due.user, status);
                sent.push((due.user, status));
            }
        }
        sent
    }

    #[test]
    fn going_offline_is_held_until_the_offline_wait_and_a_return_before_it_sends_nothing() {
        let mut c = Coalescer::new(Duration::seconds(5)).with_offline_after(Duration::seconds(30));
        let (alice, bob) = (UserId::new(), UserId::new());
        c.note(alice, Online, at(0));
        c.note(bob, Online, at(0));
        // Both dropped: due after the window, but held while offline.
        assert!(flush(&mut c, at(5), |_| Offline).is_empty());
        assert_eq!(c.len(), 2, "held, not forgotten");
        // Alice is back at 20 s; bob is not.
        c.note(alice, Offline, at(20));
        assert!(flush(&mut c, at(29), |_| Offline).is_empty());
        let back = |u: UserId| if u == alice { Online } else { Offline };
        assert_eq!(flush(&mut c, at(30), back), [(bob, Offline)]);
        assert!(c.is_empty());
    }

    #[test]
    fn coming_online_is_not_held_by_the_offline_wait() {
        let mut c = Coalescer::new(Duration::seconds(5)).with_offline_after(Duration::seconds(30));
        let alice = UserId::new();
        c.note(alice, Offline, at(0));
        assert_eq!(flush(&mut c, at(5), |_| Online), [(alice, Online)]);
    }

    #[test]
    fn a_status_is_away_only_when_every_open_socket_is_away() {
        assert_eq!(PresenceStatus::of_sockets(0, 0), Offline);
        assert_eq!(PresenceStatus::of_sockets(2, 1), Online);
        assert_eq!(PresenceStatus::of_sockets(2, 2), Away);
    }

    #[test]
    fn a_change_goes_out_once_it_has_waited_a_window_and_the_latest_state_wins() {
        let mut c = Coalescer::new(Duration::seconds(5));
        let alice = UserId::new();
        c.note(alice, Offline, at(0));
        assert!(flush(&mut c, at(4), |_| Online).is_empty(), "window open");
        c.note(alice, Online, at(4));
        assert_eq!(flush(&mut c, at(5), |_| Away), [(alice, Away)]);
        assert!(c.is_empty());
    }

    #[test]
    fn a_drop_and_reconnect_within_the_window_sends_nothing() {
        let mut c = Coalescer::new(Duration::seconds(5));
        let alice = UserId::new();
        c.note(alice, Online, at(0));
        c.note(alice, Offline, at(2));
        assert!(flush(&mut c, at(5), |_| Online).is_empty());
        assert!(c.is_empty(), "nothing waiting: forgotten");
    }

    #[test]
    fn announcements_of_one_user_are_at_least_a_window_apart() {
        let mut c = Coalescer::new(Duration::seconds(5));
        let alice = UserId::new();
        c.note(alice, Offline, at(0));
        assert_eq!(flush(&mut c, at(5), |_| Online), [(alice, Online)]);
        c.note(alice, Online, at(5));
        assert!(flush(&mut c, at(9), |_| Offline).is_empty());
        assert_eq!(flush(&mut c, at(10), |_| Offline), [(alice, Offline)]);
    }

    #[test]
    fn without_a_window_every_change_goes_out_at_the_next_flush() {
        let mut c = Coalescer::new(Duration::zero());
        let alice = UserId::new();
        let mut sent = Vec::new();
        for (second, (before, after)) in [(Offline, Online), (Online, Offline), (Offline, Online)]
            .into_iter()
            .enumerate()
        {
            c.note(alice, before, at(second as i64));
            sent.extend(flush(&mut c, at(second as i64), |_| after));
        }
        assert_eq!(sent, [(alice, Online), (alice, Offline), (alice, Online)]);
    }

    #[test]
    fn each_user_has_a_window_of_their_own() {
        let mut c = Coalescer::new(Duration::seconds(5));
        let (alice, bob) = (UserId::new(), UserId::new());
        c.note(alice, Offline, at(0));
        c.note(bob, Offline, at(3));
        assert_eq!(flush(&mut c, at(5), |_| Online), [(alice, Online)]);
        assert_eq!(flush(&mut c, at(8), |_| Online), [(bob, Online)]);
    }

    fn seen(user: UserId, hide: bool) -> LastSeen {
        LastSeen {
            user_id: user,
            last_seen_at: Some(at(0)),
            hide_last_seen: hide,
        }
    }

    #[test]
    fn last_seen_shows_only_for_an_offline_user_when_neither_side_hides_it() {
        let (alice, bob) = (UserId::new(), UserId::new());
        let shown = |hide, viewer_hides, status| {
            view(&seen(alice, hide), status, viewer_hides, bob).last_seen_at
        };
        assert_eq!(shown(false, false, Offline), Some(at(0)));
        assert_eq!(shown(true, false, Offline), None, "the user hides it");
        assert_eq!(shown(false, true, Offline), None, "the viewer hides theirs");
        assert_eq!(shown(false, false, Online), None, "online: no last seen");
    }

    #[test]
    fn a_user_who_hides_last_seen_still_sees_their_own() {
        let alice = UserId::new();
        let own = view(&seen(alice, true), Offline, true, alice);
        assert_eq!(own.last_seen_at, Some(at(0)));
    }
}
