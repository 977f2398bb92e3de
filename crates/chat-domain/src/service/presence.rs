//! Presence: reading who is online as the caller may see it, hiding one's last-seen time,
//! and announcing changes to those who share a conversation, coalesced.
//!
//! The gateway tells this service when a user's sockets changed ([`PresenceService::note`])
//! and when their last socket on a node closed ([`PresenceService::last_socket_closed`]);
//! a periodic [`PresenceService::flush`] announces what changed. The status itself comes
//! from the [`PresenceDirectory`] (this node's sockets, or every live node's).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::events::DomainEvent;
use crate::ports::{BlockStore, Clock, EventPublisher, PresenceDirectory, PresenceStore};
use crate::presence::{Coalescer, LastSeen, Presence, PresenceStatus, view};
use crate::{DomainError, Resource, UserId};

use super::Ports;

/// The most users one bulk presence query may name.
pub const MAX_PRESENCE_QUERY: usize = 200;

#[derive(Clone)]
pub struct PresenceService {
    store: Arc<dyn PresenceStore>,
    directory: Arc<dyn PresenceDirectory>,
    blocks: Arc<dyn BlockStore>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    coalescer: Arc<Mutex<Coalescer>>,
}

impl PresenceService {
    pub fn new(ports: &Ports) -> Self {
        Self {
            store: ports.presence_store.clone(),
            directory: ports.presence.clone(),
            blocks: ports.blocks.clone(),
            events: ports.events.clone(),
            clock: ports.clock.clone(),
            coalescer: Arc::new(Mutex::new(
                Coalescer::new(ports.presence_window)
                    .with_offline_after(ports.presence_offline_after),
            )),
        }
    }

    fn coalescer(&self) -> MutexGuard<'_, Coalescer> {
        self.coalescer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The coalescing window: how often [`Self::flush`] is worth calling.
    pub fn window(&self) -> chrono::Duration {
        self.coalescer().window()
    }

    /// Notes that `user`'s sockets changed (one opened, closed, or said away); `before` is
    /// their status before the change as far as this node knows. Announced by a later
    /// [`Self::flush`]. Never blocks on I/O: safe on an async worker.
    pub fn note(&self, user: UserId, before: PresenceStatus) {
        let now = self.clock.now();
        self.coalescer().note(user, before, now);
    }

    /// Records, durably, that `user`'s last socket on this node closed now: their
    /// `last_seen_at` when no other node holds one.
    pub fn last_socket_closed(&self, user: UserId) -> Result<(), DomainError> {
        self.store.record_last_seen(user, self.clock.now())?;
        Ok(())
    }

    /// Announces every change whose window is over: for each such user whose status is not
    /// the one last announced, one `presence` event to everyone who may see it. Returns how
    /// many users were announced. A user whose announcement failed is tried again at the
    /// next flush.
    pub fn flush(&self) -> Result<usize, DomainError> {
        let now = self.clock.now();
        let due = self.coalescer().due(now);
        if due.is_empty() {
            return Ok(0);
        }
        let users: Vec<UserId> = due.iter().map(|d| d.user).collect();
        let statuses = match self.statuses(&users) {
            Ok(statuses) => statuses,
            Err(error) => {
                let mut coalescer = self.coalescer();
                for d in due {
                    coalescer.note(d.user, d.last, now);
                }
                return Err(error);
            }
        };
        let mut announced = 0;
        let mut failure = None;
        for d in due {
            let (user, last) = (d.user, d.last);
            let status = statuses
                .get(&user)
                .copied()
                .unwrap_or(PresenceStatus::Offline);
            let Some(status) = self.coalescer().decide(d, status, now) else {
                continue;
            };
            match self.announce(user, status, now) {
                Ok(()) => {
                    self.coalescer().announced(user, status);
                    announced += 1;
                }
                Err(error) => {
                    self.coalescer().note(user, last, now);
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(error) if announced == 0 => Err(error),
            _ => Ok(announced),
        }
    }

    /// Publishes `user`'s presence to those who may see it: the users sharing a
    /// conversation with them, but those they blocked; those who hide their own last-seen
    /// time (and everyone, when `user` hides theirs) get it without one.
    fn announce(
        &self,
        user: UserId,
        status: PresenceStatus,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DomainError> {
        let blocked: HashSet<UserId> = self
            .blocks
            .blocked_by(user)?
            .into_iter()
            .map(|b| b.user_id)
            .collect();
        let audience: Vec<UserId> = self
            .store
            .contacts(user)?
            .into_iter()
            .filter(|u| !blocked.contains(u))
            .collect();
        if audience.is_empty() {
            return Ok(());
        }
        let mut asked = audience.clone();
        asked.push(user);
        let seen = self.last_seen(&asked)?;
        let target = seen
            .get(&user)
            .cloned()
            .unwrap_or_else(|| LastSeen::unknown(user));
        let (hiding, showing): (Vec<UserId>, Vec<UserId>) = audience
            .into_iter()
            .partition(|u| seen.get(u).is_some_and(|s| s.hide_last_seen));
        for (viewers, viewer_hides) in [(showing, false), (hiding, true)] {
            let Some(first) = viewers.first().copied() else {
                continue;
            };
            self.events.publish(DomainEvent::PresenceChanged {
                presence: view(&target, status, viewer_hides, first),
                audience: viewers,
                at: now,
            });
        }
        Ok(())
    }

    /// `target`'s presence as `viewer` may see it; "not found" when they may not (they
    /// share no conversation, or `target` blocked `viewer`), as for a user who does not
    /// exist.
    pub fn get(&self, viewer: UserId, target: UserId) -> Result<Presence, DomainError> {
        self.query(viewer, &[target])?
            .pop()
            .ok_or_else(|| DomainError::not_found(Resource::User, target))
    }

    /// The presence of each of `targets` that `viewer` may see, in the order asked, each
    /// once; those the viewer may not see (or that do not exist) are left out. At most
    /// [`MAX_PRESENCE_QUERY`] ids.
    pub fn query(&self, viewer: UserId, targets: &[UserId]) -> Result<Vec<Presence>, DomainError> {
        if targets.len() > MAX_PRESENCE_QUERY {
            return Err(DomainError::invalid(
                "user_ids",
                format!("at most {MAX_PRESENCE_QUERY} ids"),
            ));
        }
        let mut unique = Vec::with_capacity(targets.len());
        let mut seen_ids = HashSet::new();
        for target in targets {
            if seen_ids.insert(*target) {
                unique.push(*target);
            }
        }
        let visible = self.visible_to(viewer, &unique)?;
        if visible.is_empty() {
            return Ok(Vec::new());
        }
        let statuses = self.statuses(&visible)?;
        let mut asked = visible.clone();
        asked.push(viewer);
        let stored = self.last_seen(&asked)?;
        let viewer_hides = stored.get(&viewer).is_some_and(|s| s.hide_last_seen);
        Ok(unique
            .into_iter()
            .filter(|u| visible.contains(u))
            .filter_map(|u| {
                // A user with no row is no user (deleted between the reads): left out.
                let target = stored.get(&u)?;
                let status = statuses.get(&u).copied().unwrap_or(PresenceStatus::Offline);
                Some(view(target, status, viewer_hides, viewer))
            })
            .collect())
    }

    /// Whether the user hides their last-seen time.
    pub fn hides_last_seen(&self, user: UserId) -> Result<bool, DomainError> {
        Ok(self
            .store
            .last_seen(&[user])?
            .first()
            .is_some_and(|s| s.hide_last_seen))
    }

    /// Hides the user's last-seen time from everyone else, who from then on get `null`
    /// (and the user gets `null` for everyone else's), or shows it again.
    pub fn set_hide_last_seen(&self, user: UserId, hide: bool) -> Result<bool, DomainError> {
        self.store.set_hide_last_seen(user, hide)?;
        Ok(hide)
    }

    /// Of `targets`, those `viewer` may see: themselves, and those who share a
    /// conversation with them and have not blocked them.
    fn visible_to(&self, viewer: UserId, targets: &[UserId]) -> Result<Vec<UserId>, DomainError> {
        let others: Vec<UserId> = targets.iter().copied().filter(|u| *u != viewer).collect();
        let mut visible: Vec<UserId> = targets.iter().copied().filter(|u| *u == viewer).collect();
        if others.is_empty() {
            return Ok(visible);
        }
        let contacts = self.store.contacts_among(viewer, &others)?;
        if contacts.is_empty() {
            return Ok(visible);
        }
        let blockers: HashSet<UserId> = self
            .blocks
            .blockers_of(viewer, &contacts)?
            .into_iter()
            .collect();
        visible.extend(contacts.into_iter().filter(|u| !blockers.contains(u)));
        Ok(visible)
    }

    fn statuses(&self, users: &[UserId]) -> Result<HashMap<UserId, PresenceStatus>, DomainError> {
        Ok(self.directory.status_among(users)?.into_iter().collect())
    }

    fn last_seen(&self, users: &[UserId]) -> Result<HashMap<UserId, LastSeen>, DomainError> {
        Ok(self
            .store
            .last_seen(users)?
            .into_iter()
            .map(|s| (s.user_id, s))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::World;
    use crate::service::CreateConversation;
    use PresenceStatus::{Offline, Online};

    fn group(world: &World, owner: UserId, others: &[UserId]) {
        world
            .services
            .conversations
            .create(
                owner,
                CreateConversation {
                    participant_ids: others.to_vec(),
                    name: Some("g".into()),
                    ..Default::default()
                },
            )
            .unwrap();
    }

    fn presence_events(world: &World) -> Vec<(Presence, Vec<UserId>)> {
        world
            .events
            .take()
            .into_iter()
            .filter_map(|event| match event {
                DomainEvent::PresenceChanged {
                    presence, audience, ..
                } => Some((presence, audience)),
                _ => None,
            })
            .collect()
    }

    fn sorted(mut users: Vec<UserId>) -> Vec<UserId> {
        users.sort();
        users
    }

    #[test]
    fn a_co_member_sees_presence_and_a_stranger_gets_not_found() {
        let world = World::new();
        let (alice, bob, eve) = (world.user("alice"), world.user("bob"), world.user("eve"));
        group(&world, alice, &[bob]);
        world.store.set_online(alice, true);
        let seen = world.services.presence.get(bob, alice).unwrap();
        assert_eq!(seen.status, Online);
        let error = world.services.presence.get(eve, alice).unwrap_err();
        assert!(matches!(error, DomainError::NotFound { .. }), "{error:?}");
        let error = world.services.presence.get(bob, UserId::new()).unwrap_err();
        assert!(matches!(error, DomainError::NotFound { .. }), "{error:?}");
    }

    #[test]
    fn everyone_sees_their_own_presence() {
        let world = World::new();
        let alice = world.user("alice");
        let own = world.services.presence.get(alice, alice).unwrap();
        assert_eq!((own.user_id, own.status), (alice, Offline));
    }

    #[test]
    fn a_blocked_user_cannot_see_the_blockers_presence_but_the_blocker_sees_theirs() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        group(&world, alice, &[bob]);
        world.store.block(alice, bob, chrono::Utc::now()).unwrap();
        assert!(world.services.presence.get(bob, alice).is_err());
        assert!(world.services.presence.get(alice, bob).is_ok());
    }

    #[test]
    fn the_bulk_query_leaves_out_whom_the_caller_may_not_see_and_repeats() {
        let world = World::new();
        let (alice, bob, carol, eve) = (
            world.user("alice"),
            world.user("bob"),
            world.user("carol"),
            world.user("eve"),
        );
        group(&world, alice, &[bob, carol]);
        world.store.set_online(carol, true);
        let seen = world
            .services
            .presence
            .query(alice, &[carol, eve, bob, carol, UserId::new()])
            .unwrap();
        let got: Vec<_> = seen.iter().map(|p| (p.user_id, p.status)).collect();
        assert_eq!(got, [(carol, Online), (bob, Offline)]);
    }

    #[test]
    fn a_bulk_query_over_the_cap_is_invalid() {
        let world = World::new();
        let alice = world.user("alice");
        let ids: Vec<UserId> = (0..=MAX_PRESENCE_QUERY).map(|_| UserId::new()).collect();
        let error = world.services.presence.query(alice, &ids).unwrap_err();
        assert!(matches!(error, DomainError::Validation(_)), "{error:?}");
        assert!(
            world
                .services
                .presence
                .query(alice, &ids[..MAX_PRESENCE_QUERY])
                .is_ok()
        );
    }

    #[test]
    fn hiding_last_seen_hides_it_both_ways_but_not_from_oneself() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        group(&world, alice, &[bob]);
        let presence = &world.services.presence;
        presence.last_socket_closed(alice).unwrap();
        presence.last_socket_closed(bob).unwrap();
        assert!(presence.get(bob, alice).unwrap().last_seen_at.is_some());
        presence.set_hide_last_seen(alice, true).unwrap();
        assert!(presence.hides_last_seen(alice).unwrap());
        assert_eq!(presence.get(bob, alice).unwrap().last_seen_at, None);
        assert_eq!(presence.get(alice, bob).unwrap().last_seen_at, None);
        assert!(presence.get(alice, alice).unwrap().last_seen_at.is_some());
        presence.set_hide_last_seen(alice, false).unwrap();
        assert!(presence.get(bob, alice).unwrap().last_seen_at.is_some());
    }

    #[test]
    fn an_event_goes_only_to_co_members_not_blocked_and_not_to_the_user() {
        let world = World::new();
        let (alice, bob, carol, eve, mallory) = (
            world.user("alice"),
            world.user("bob"),
            world.user("carol"),
            world.user("eve"),
            world.user("mallory"),
        );
        group(&world, alice, &[bob, carol, mallory]);
        let _ = eve;
        world
            .store
            .block(alice, mallory, chrono::Utc::now())
            .unwrap();
        world.events.take();
        world.store.set_online(alice, true);
        world.services.presence.note(alice, Offline);
        assert_eq!(world.services.presence.flush().unwrap(), 1);
        let events = presence_events(&world);
        assert_eq!(events.len(), 1);
        let (presence, audience) = &events[0];
        assert_eq!((presence.user_id, presence.status), (alice, Online));
        assert_eq!(sorted(audience.clone()), sorted(vec![bob, carol]));
    }

    #[test]
    fn viewers_who_hide_their_own_last_seen_get_the_event_without_one() {
        let world = World::new();
        let (alice, bob, carol) = (world.user("alice"), world.user("bob"), world.user("carol"));
        group(&world, alice, &[bob, carol]);
        world
            .services
            .presence
            .set_hide_last_seen(carol, true)
            .unwrap();
        world.events.take();
        world.services.presence.last_socket_closed(alice).unwrap();
        world.services.presence.note(alice, Online);
        world.services.presence.flush().unwrap();
        let events = presence_events(&world);
        let for_bob = events.iter().find(|(_, a)| a == &[bob]).unwrap();
        let for_carol = events.iter().find(|(_, a)| a == &[carol]).unwrap();
        assert_eq!(for_bob.0.status, Offline);
        assert!(for_bob.0.last_seen_at.is_some());
        assert_eq!(for_carol.0.last_seen_at, None);
    }

    #[test]
    fn a_change_waits_its_window_before_it_is_announced() {
        // The fake clock moves a second per read: an hour's window never ends here.
        let world = World::with_presence_window(chrono::Duration::hours(1));
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        group(&world, alice, &[bob]);
        world.events.take();
        world.store.set_online(alice, true);
        world.services.presence.note(alice, Offline);
        assert_eq!(world.services.presence.flush().unwrap(), 0);
        assert!(presence_events(&world).is_empty());
    }

    #[test]
    fn a_change_back_before_the_flush_announces_nothing() {
        let world = World::new();
        let (alice, bob) = (world.user("alice"), world.user("bob"));
        group(&world, alice, &[bob]);
        world.events.take();
        // Online, dropped, back: the flush finds alice as the audience last knew her.
        world.store.set_online(alice, true);
        world.services.presence.note(alice, Online);
        assert_eq!(world.services.presence.flush().unwrap(), 0);
        assert!(presence_events(&world).is_empty());
    }

    #[test]
    fn a_user_with_nobody_to_tell_publishes_nothing() {
        let world = World::new();
        let alice = world.user("alice");
        world.events.take();
        world.store.set_online(alice, true);
        world.services.presence.note(alice, Offline);
        world.services.presence.flush().unwrap();
        assert!(presence_events(&world).is_empty());
    }
}
