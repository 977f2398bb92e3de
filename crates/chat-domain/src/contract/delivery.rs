//! The rules of delivered markers ([`ReadReceiptStore::deliver`]) and of how the feed
//! replays them.

use crate::contract::{Fixture, Stores};
use crate::conversation::Role;
use crate::feed::FeedEntry;
use crate::message::Seq;
use crate::read_state::{Delivered, Delivery};
use crate::{ConversationId, UserId};

fn delivery(conversation_id: ConversationId, user_id: UserId, seq: Seq) -> Delivery {
    Delivery {
        conversation_id,
        user_id,
        seq,
    }
}

fn delivered_of<S: Stores + ?Sized>(store: &S, c: ConversationId, user: UserId) -> Seq {
    store
        .membership(c, user)
        .unwrap()
        .expect("a member")
        .last_delivered_seq
}

/// One call records a whole batch: each member's marker moves to the highest seq given for
/// them when that is past both their delivered and their read marker, never back, each
/// marker that moved at its own new position (after everything before, never two at one),
/// and only those come back; non-members are skipped, not refused.
pub fn deliveries_move_markers_forward_only_each_at_its_own_position<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let d = f.direct(a, b);
    let m1 = f.send(g, a, "1");
    let m2 = f.send(g, a, "2");
    let m3 = f.send(d, a, "3");
    store.advance(g, c, m2.seq, f.now()).unwrap();
    let before = store.latest_seq().unwrap();

    let moved = store
        .deliver(&[
            delivery(g, b, m1.seq),
            delivery(g, b, m2.seq),
            delivery(g, b, m1.seq),
            delivery(d, b, m3.seq),
            // Carol read up to m2: receiving m1 again says nothing new.
            delivery(g, c, m1.seq),
            // Alice sent these: sending is reading, reading is receiving.
            delivery(g, a, m2.seq),
            delivery(g, UserId::new(), m2.seq),
            delivery(ConversationId::new(), b, m2.seq),
        ])
        .unwrap();
    let who: Vec<(ConversationId, UserId, Seq)> = moved
        .iter()
        .map(|m| (m.conversation_id, m.user_id, m.last_delivered_seq))
        .collect();
    assert_eq!(
        who,
        [(g, b, m2.seq), (d, b, m3.seq)],
        "the highest per member, in the order given"
    );
    let positions: Vec<Seq> = moved.iter().map(|m| m.seq).collect();
    assert!(positions[0] > before, "{positions:?} after {before:?}");
    assert!(positions[1] > positions[0], "never two at one position");
    assert_eq!(store.latest_seq().unwrap(), positions[1]);
    assert_eq!(delivered_of(store, g, b), m2.seq);
    assert_eq!(delivered_of(store, d, b), m3.seq);
    assert_eq!(delivered_of(store, g, c), Seq::ZERO, "nothing recorded");
    assert_eq!(delivered_of(store, g, a), Seq::ZERO, "nothing recorded");

    let at = store.latest_seq().unwrap();
    assert_eq!(
        store
            .deliver(&[delivery(g, b, m1.seq), delivery(d, b, m3.seq)])
            .unwrap(),
        [],
        "never back, and no position taken"
    );
    assert_eq!(store.latest_seq().unwrap(), at);
    assert_eq!(delivered_of(store, g, b), m2.seq);
    assert_eq!(store.deliver(&[]).unwrap(), []);
}

fn delivered_in_feed<S: Stores + ?Sized>(store: &S, user: UserId, since: Seq) -> Vec<Delivered> {
    store
        .feed(user, since, 100)
        .unwrap()
        .into_iter()
        .filter_map(|item| match item.entry {
            FeedEntry::Delivered(d) => {
                assert_eq!(item.position, d.seq, "at its own position");
                Some(d)
            }
            _ => None,
        })
        .collect()
}

/// The feed holds every other member's delivered marker of the reader's conversations (not
/// the reader's own: their devices know what they received) at the position of its latest
/// move, as it now stands; nothing of conversations the reader is not in; and a member
/// removed and added back starts from zero.
pub fn the_feed_replays_each_members_delivered_marker_at_its_latest_move<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b, c, eve) = (
        f.user("alice"),
        f.user("bob"),
        f.user("carol"),
        f.user("eve"),
    );
    let g = f.group(&[a, b, c]);
    let m1 = f.send(g, a, "1");
    let m2 = f.send(g, a, "2");
    let first = store.deliver(&[delivery(g, b, m1.seq)]).unwrap();
    let since = store.latest_seq().unwrap();
    let later = store
        .deliver(&[delivery(g, b, m2.seq), delivery(g, c, m1.seq)])
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(later.len(), 2);
    let (bobs, carols) = (later[0], later[1]);

    assert_eq!(
        delivered_in_feed(store, a, Seq::ZERO),
        later,
        "each marker once, as it stands, at its latest move"
    );
    assert_eq!(
        delivered_in_feed(store, b, Seq::ZERO),
        [carols],
        "not his own"
    );
    assert_eq!(
        delivered_in_feed(store, c, Seq::ZERO),
        [bobs],
        "not her own"
    );
    assert_eq!(delivered_in_feed(store, a, bobs.seq), [carols]);
    assert_eq!(delivered_in_feed(store, a, since), later);
    assert_eq!(delivered_in_feed(store, eve, Seq::ZERO), [], "an outsider");

    store.remove_member(g, c, f.now()).unwrap();
    assert_eq!(delivered_in_feed(store, a, Seq::ZERO), [bobs]);
    assert_eq!(
        delivered_in_feed(store, c, Seq::ZERO),
        [],
        "no longer in it"
    );
    store
        .add_members(g, &[c], Role::Member, 100, f.now())
        .unwrap();
    assert_eq!(delivered_of(store, g, c), Seq::ZERO, "added back from zero");
    assert_eq!(delivered_in_feed(store, c, Seq::ZERO), [bobs]);
    let again = store.deliver(&[delivery(g, c, m1.seq)]).unwrap();
    assert_eq!(again.len(), 1, "from zero, m1 is new to carol again");
    assert_eq!(delivered_in_feed(store, b, bobs.seq), again);
}

/// Marking unread takes nothing back from delivery: a marker set back below where it stood
/// raises the delivered marker to where reading stood, at a position of its own after the
/// marker's, so what every read shows as delivered never goes back. Setting it back when
/// delivery already stood that far changes no delivery.
pub fn marking_unread_takes_nothing_back_from_delivery<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let m1 = f.send(g, a, "1");
    let m2 = f.send(g, a, "2");
    store.advance(g, b, m2.seq, f.now()).unwrap();
    let set = store.set_marker(g, b, Seq::ZERO, f.now()).unwrap();
    assert_eq!(set.marker.last_read_seq, Seq::ZERO);
    let member = store.membership(g, b).unwrap().unwrap();
    assert_eq!(
        (member.last_read_seq, member.last_delivered_seq),
        (Seq::ZERO, m2.seq)
    );
    let raised = delivered_in_feed(store, a, Seq::ZERO);
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        (raised[0].user_id, raised[0].last_delivered_seq),
        (b, m2.seq)
    );
    let marker_at = set.marker.seq.unwrap();
    assert!(
        raised[0].seq > marker_at,
        "its own position, after the marker's"
    );
    assert_eq!(store.latest_seq().unwrap(), raised[0].seq);

    // Forward to m1 and back again: delivery already stands past where reading stood.
    store.set_marker(g, b, m1.seq, f.now()).unwrap();
    let back = store.set_marker(g, b, Seq::ZERO, f.now()).unwrap();
    assert_eq!(delivered_in_feed(store, a, Seq::ZERO), raised);
    assert_eq!(store.latest_seq().unwrap(), back.marker.seq.unwrap());
    assert_eq!(delivered_of(store, g, b), m2.seq);
}
