//! [`PresenceStore`] over the `user_presence` table (who shares a conversation with whom
//! from `conversation_members`), and [`PgPresenceDirectory`]: who has a socket open on any
//! live node, from this node's own sockets and the other nodes' counts in
//! `user_connections` (see [`crate::PgConnectionCap`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_domain::ports::{PresenceDirectory, PresenceStore, StoreResult};
use chat_domain::presence::{LastSeen, PresenceStatus};
use chat_domain::{StoreError, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use uuid::Uuid;

use crate::PgStore;
use crate::error::StorageResult;
use crate::pool::PgDatabase;
use crate::schema::{user_presence, users};

/// The other members of every conversation `$1` is in.
const CONTACTS: &str = "\
SELECT DISTINCT o.user_id AS user_id
FROM conversation_members m
JOIN conversation_members o ON o.conversation_id = m.conversation_id
WHERE m.user_id = $1 AND o.user_id <> $1";

/// Of `$1`, the users with a connection on a live node other than `$2`.
const ONLINE_ELSEWHERE: &str = "\
SELECT DISTINCT c.user_id AS user_id
FROM user_connections c JOIN chat_nodes n ON n.id = c.node_id
WHERE c.user_id = ANY($1) AND c.node_id <> $2 AND c.connections > 0
  AND n.heartbeat_at > clock_timestamp() - $3 * interval '1 millisecond'";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
}

fn exists(conn: &mut PgConnection, user: UserId) -> StorageResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(users::table.find(user.as_uuid()))).get_result(conn)?)
}

fn contacts(conn: &mut PgConnection, user: UserId) -> StorageResult<Vec<UserId>> {
    Ok(diesel::sql_query(CONTACTS)
        .bind::<SqlUuid, _>(user.as_uuid())
        .load::<Row>(conn)?
        .into_iter()
        .map(|r| UserId::from(r.user_id))
        .collect())
}

impl PresenceStore for PgStore {
    fn record_last_seen(&self, user: UserId, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(|conn| {
            if !exists(conn, user)? {
                return Ok(false);
            }
            diesel::insert_into(user_presence::table)
                .values((
                    user_presence::user_id.eq(user.as_uuid()),
                    user_presence::last_seen_at.eq(Some(at)),
                ))
                .on_conflict(user_presence::user_id)
                .do_update()
                .set(user_presence::last_seen_at.eq(Some(at)))
                .execute(conn)?;
            Ok(true)
        })?
        .then_some(())
        .ok_or(StoreError::Missing)
    }

    fn set_hide_last_seen(&self, user: UserId, hide: bool) -> StoreResult<()> {
        self.write(|conn| {
            if !exists(conn, user)? {
                return Ok(false);
            }
            diesel::insert_into(user_presence::table)
                .values((
                    user_presence::user_id.eq(user.as_uuid()),
                    user_presence::hide_last_seen.eq(hide),
                ))
                .on_conflict(user_presence::user_id)
                .do_update()
                .set(user_presence::hide_last_seen.eq(hide))
                .execute(conn)?;
            Ok(true)
        })?
        .then_some(())
        .ok_or(StoreError::Missing)
    }

    fn last_seen(&self, ids: &[UserId]) -> StoreResult<Vec<LastSeen>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Uuid> = ids.iter().map(|u| u.as_uuid()).collect();
        self.read(|conn| {
            let rows: Vec<(Uuid, Option<DateTime<Utc>>, Option<bool>)> = users::table
                .left_join(user_presence::table)
                .filter(users::id.eq_any(&keys))
                .select((
                    users::id,
                    user_presence::last_seen_at.nullable(),
                    user_presence::hide_last_seen.nullable(),
                ))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(user, last_seen_at, hide)| LastSeen {
                    user_id: user.into(),
                    last_seen_at,
                    hide_last_seen: hide.unwrap_or(false),
                })
                .collect())
        })
    }

    fn contacts(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.read(|conn| contacts(conn, user))
    }

    fn contacts_among(&self, user: UserId, among: &[UserId]) -> StoreResult<Vec<UserId>> {
        if among.is_empty() {
            return Ok(Vec::new());
        }
        let contacts = self.read(|conn| contacts(conn, user))?;
        Ok(among
            .iter()
            .copied()
            .filter(|u| contacts.contains(u))
            .collect())
    }
}

/// Who has a socket open on any live node: this node's own sockets from `local` (exact,
/// with away), and the other nodes' from `user_connections`, leaving out nodes silent for
/// longer than `stale_after`, so a killed node's users go offline after that time. A user
/// with a socket on another node counts as online there: away is known only on the node
/// that holds the socket (docs/websocket.md, "Presence").
pub struct PgPresenceDirectory {
    db: Arc<PgDatabase>,
    node: Uuid,
    stale_after: Duration,
    local: Arc<dyn PresenceDirectory>,
}

impl PgPresenceDirectory {
    /// `node` is this node's id in `chat_nodes` (its connection cap's), so that its own
    /// rows, written moments after a change, are not read back in place of `local`.
    pub fn new(
        db: Arc<PgDatabase>,
        node: Uuid,
        stale_after: Duration,
        local: Arc<dyn PresenceDirectory>,
    ) -> Self {
        Self {
            db,
            node,
            stale_after,
            local,
        }
    }

    fn elsewhere(&self, users: &[UserId]) -> StorageResult<Vec<UserId>> {
        let ids: Vec<Uuid> = users.iter().map(|u| u.as_uuid()).collect();
        let stale = i64::try_from(self.stale_after.as_millis()).unwrap_or(i64::MAX);
        let mut conn = self.db.conn()?;
        Ok(diesel::sql_query(ONLINE_ELSEWHERE)
            .bind::<Array<SqlUuid>, _>(ids)
            .bind::<SqlUuid, _>(self.node)
            .bind::<BigInt, _>(stale)
            .load::<Row>(&mut conn)?
            .into_iter()
            .map(|r| UserId::from(r.user_id))
            .collect())
    }
}

impl PresenceDirectory for PgPresenceDirectory {
    fn online_among(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        Ok(self
            .status_among(users)?
            .into_iter()
            .map(|(user, _)| user)
            .collect())
    }

    fn status_among(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, PresenceStatus)>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut statuses: HashMap<UserId, PresenceStatus> =
            self.local.status_among(users)?.into_iter().collect();
        for user in self.elsewhere(users)? {
            statuses.insert(user, PresenceStatus::Online);
        }
        Ok(statuses.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::connection_cap::{CapOptions, PgConnectionCap};
    use crate::pool::PgOptions;
    use crate::testing::TestDatabase;

    /// A node's own sockets, as its hub would report them.
    struct Local(Vec<(UserId, PresenceStatus)>);

    impl PresenceDirectory for Local {
        fn online_among(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
            Ok(self
                .status_among(users)?
                .into_iter()
                .map(|(u, _)| u)
                .collect())
        }

        fn status_among(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, PresenceStatus)>> {
            Ok(self
                .0
                .iter()
                .copied()
                .filter(|(u, _)| users.contains(u))
                .collect())
        }
    }

    /// Polls `condition` for up to five seconds: counts reach the database moments later.
    fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_socket_on_another_live_node_is_online_and_a_dead_nodes_stop_counting() {
        let Some(test_db) = TestDatabase::create("chat-postgres presence directory") else {
            return;
        };
        let db = Arc::new(PgDatabase::connect(test_db.url(), &PgOptions::default()).unwrap());
        db.migrate().unwrap();
        let quick = CapOptions {
            stale_after: Duration::from_millis(600),
            heartbeat_every: Duration::from_millis(200),
            ..CapOptions::default()
        };
        let a = PgConnectionCap::start(&db, Uuid::new_v4(), quick.clone()).unwrap();
        let b = PgConnectionCap::start(&db, Uuid::new_v4(), quick.clone()).unwrap();
        let (alice, bob, carol) = (UserId::new(), UserId::new(), UserId::new());
        let seen_from_b = PgPresenceDirectory::new(
            db.clone(),
            b.node(),
            quick.stale_after,
            Arc::new(Local(vec![(bob, PresenceStatus::Away)])),
        );
        assert!(a.claim(alice, 5));
        let status = |user| {
            seen_from_b
                .status_among(&[alice, bob, carol])
                .unwrap()
                .into_iter()
                .find(|(u, _)| *u == user)
                .map(|(_, s)| s)
        };
        assert_eq!(status(alice), Some(PresenceStatus::Online));
        assert_eq!(status(bob), Some(PresenceStatus::Away), "local, with away");
        assert_eq!(status(carol), None);
        // Node A is killed: no release, no more heartbeats.
        drop(a);
        eventually("alice goes offline after the stale time", || {
            status(alice).is_none()
        });
    }
}
