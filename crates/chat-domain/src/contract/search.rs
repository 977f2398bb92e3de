//! The rules of full-text search ([`SearchStore::search_messages`]): what a query matches,
//! in which order, paged how, and above all what a user may find: only what they may read
//! now, as it now stands.

use crate::contract::{Fixture, Stores, created, sorted};
use crate::message::{Emoji, MessageContent, NewMessage};
use crate::ports::MessageStore;
use crate::search::{
    MessageSearch, SearchCursor, SearchFilters, SearchHit, SearchOrder, SearchQuery,
};
use crate::{MessageId, UserId};

/// A first page of `q` for `user`, in `order`, with `filters`.
fn search<S: Stores + ?Sized>(
    store: &S,
    user: UserId,
    q: &str,
    order: SearchOrder,
    filters: SearchFilters,
) -> Vec<SearchHit> {
    let search = MessageSearch {
        query: SearchQuery::parse(q).expect("a valid query"),
        filters,
        order,
        cursor: None,
    };
    store
        .search_messages(user, &search, 100)
        .expect("the search runs")
}

/// The ids `user` finds for `q`, in relevance order.
fn found<S: Stores + ?Sized>(store: &S, user: UserId, q: &str) -> Vec<MessageId> {
    search(
        store,
        user,
        q,
        SearchOrder::Relevance,
        SearchFilters::default(),
    )
    .into_iter()
    .map(|h| h.message.id)
    .collect()
}

/// Words match whole words ignoring case, phrases their words in a row, prefixes the start of
/// a word; every term of a query must match; the characters other than letters and digits
/// separate words.
pub fn words_phrases_and_prefixes_match_whole_words_in_any_case<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let deploy = f.send(g, a, "We DEPLOY to prod at noon");
    let deployed = f.send(g, b, "deployed: prod is green");
    let reversed = f.send(g, a, "prod to deploy? not yet");
    let hyphen = f.send(g, b, "the deploy-prod job failed");
    let other = f.send(g, a, "lunch at noon");

    assert_eq!(
        sorted(&found(store, a, "deploy")),
        sorted(&[deploy.id, reversed.id, hyphen.id])
    );
    assert_eq!(
        sorted(&found(store, a, "deploy*")),
        sorted(&[deploy.id, deployed.id, reversed.id, hyphen.id])
    );
    assert_eq!(found(store, b, "\"deploy to prod\""), vec![deploy.id]);
    assert_eq!(sorted(&found(store, b, "\"deploy prod\"")), vec![hyphen.id]);
    assert_eq!(sorted(&found(store, b, "deploy-prod")), vec![hyphen.id]);
    assert_eq!(found(store, a, "noon lunch"), vec![other.id]);
    assert_eq!(found(store, a, "NOON deploy"), vec![deploy.id]);
    assert!(
        found(store, a, "deplo").is_empty(),
        "a word is not a prefix"
    );
    assert!(found(store, a, "noon lunch deploy").is_empty());
    assert!(found(store, a, "\"to deploy prod\"").is_empty());
}

/// Characters that mean something in a store's query language (quotes, `*`, `-`, `:`, `(`,
/// `NEAR`, `AND`, `OR`, `NOT`) never make a search fail and never match anything but the
/// words around them; letters of any script and emoji next to words work too.
pub fn query_syntax_of_any_store_is_only_words_to_a_search<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let near = f.send(g, a, "NEAR the AND gate OR NOT");
    let colon = f.send(g, b, "content:secret (draft) -1");
    let unicode = f.send(g, a, "café über 日本語 🎉party");
    let plain = f.send(g, b, "the gate is open");

    for q in [
        "NEAR",
        "near(the",
        "AND",
        "NOT",
        "\"OR NOT\"",
        "content:secret",
        "(draft)",
        "-1",
        "NEAR/2",
        "gate^",
        "{content}",
        "'the'",
        "\\secret",
        "secret\"",
        "*dra*",
    ] {
        let hits = found(store, a, q);
        let query = SearchQuery::parse(q).unwrap();
        for (id, text) in [
            (near.id, near.text()),
            (colon.id, colon.text()),
            (unicode.id, unicode.text()),
            (plain.id, plain.text()),
        ] {
            assert_eq!(
                hits.contains(&id),
                query.matches(text.unwrap()),
                "{q:?} on {text:?}: found {hits:?}"
            );
        }
    }
    assert_eq!(found(store, a, "café"), vec![unicode.id]);
    assert_eq!(found(store, a, "日本語"), vec![unicode.id]);
    assert_eq!(found(store, a, "🎉party"), vec![unicode.id]);
    assert_eq!(found(store, a, "party"), vec![unicode.id]);
    assert_eq!(found(store, a, "ÜBER"), vec![unicode.id]);
    // Nothing but a message's text is searched: not the ids stored with it.
    for id in [g.to_string(), a.to_string(), near.id.to_string()] {
        let first = id.split('-').next().unwrap().to_owned();
        assert!(found(store, a, &first).is_empty(), "{first}");
        assert!(found(store, a, &format!("\"{id}\"")).is_empty(), "{id}");
    }
}

/// In relevance order, a message where the terms weigh more (more often, in fewer words)
/// comes first; equal matches come newest first. In recent order, newest first.
pub fn relevance_ranks_better_matches_first_and_recent_is_newest_first<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let strong = f.send(g, a, "rollback rollback rollback");
    let weak = f.send(
        g,
        b,
        "we may need a rollback later today if the release goes badly",
    );
    let twin_old = f.send(g, a, "the rollback worked");
    let twin_new = f.send(g, b, "the rollback worked");
    f.send(g, a, "unrelated chatter");

    let relevance = search(
        store,
        a,
        "rollback",
        SearchOrder::Relevance,
        SearchFilters::default(),
    );
    let ids: Vec<MessageId> = relevance.iter().map(|h| h.message.id).collect();
    assert_eq!(ids, vec![strong.id, twin_new.id, twin_old.id, weak.id]);
    assert!(relevance[0].score > relevance[1].score);
    assert_eq!(relevance[1].score, relevance[2].score);
    assert!(relevance[2].score > relevance[3].score);

    let recent: Vec<MessageId> = search(
        store,
        a,
        "rollback",
        SearchOrder::Recent,
        SearchFilters::default(),
    )
    .iter()
    .map(|h| h.message.id)
    .collect();
    assert_eq!(recent, vec![twin_new.id, twin_old.id, weak.id, strong.id]);
}

/// Filters narrow to one conversation, one sender, and seqs before or after a bound.
pub fn filters_narrow_by_conversation_sender_and_seq<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let (g, d) = (f.group(&[a, b]), f.direct(a, b));
    let one = f.send(g, a, "status one");
    let two = f.send(g, b, "status two");
    let three = f.send(d, a, "status three");
    let four = f.send(d, b, "status four");
    let ids = |filters| -> Vec<MessageId> {
        sorted(
            &search(store, a, "status", SearchOrder::Recent, filters)
                .iter()
                .map(|h| h.message.id)
                .collect::<Vec<_>>(),
        )
    };
    let all = SearchFilters::default();
    assert_eq!(
        ids(SearchFilters {
            conversation: Some(d),
            ..all
        }),
        sorted(&[three.id, four.id])
    );
    assert_eq!(
        ids(SearchFilters {
            sender: Some(b),
            ..all
        }),
        sorted(&[two.id, four.id])
    );
    assert_eq!(
        ids(SearchFilters {
            before: Some(three.seq),
            ..all
        }),
        sorted(&[one.id, two.id])
    );
    assert_eq!(
        ids(SearchFilters {
            after: Some(one.seq),
            before: Some(four.seq),
            ..all
        }),
        sorted(&[two.id, three.id])
    );
    assert_eq!(
        ids(SearchFilters {
            conversation: Some(g),
            sender: Some(a),
            ..all
        }),
        vec![one.id]
    );
}

/// Paging with the cursor of each page's last hit covers every hit exactly once, in order,
/// in both orders.
pub fn paging_by_cursor_covers_every_hit_once_in_order<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    for i in 0..23 {
        // Three kinds of text, so that scores tie in groups.
        let text = match i % 3 {
            0 => "ping".to_owned(),
            1 => "ping pong".to_owned(),
            _ => format!("ping {}", "pong ".repeat(i)),
        };
        f.send(g, if i % 2 == 0 { a } else { b }, &text);
    }
    for order in [SearchOrder::Relevance, SearchOrder::Recent] {
        let mut search = MessageSearch {
            query: SearchQuery::parse("ping").unwrap(),
            filters: SearchFilters::default(),
            order,
            cursor: None,
        };
        let whole = store.search_messages(a, &search, 100).unwrap();
        assert_eq!(whole.len(), 23);
        let mut paged = Vec::new();
        loop {
            let page = store.search_messages(a, &search, 4).unwrap();
            assert!(page.len() <= 4);
            let Some(last) = page.last() else { break };
            search.cursor = Some(SearchCursor::after(last, order));
            paged.extend(page);
        }
        let ids = |hits: &[SearchHit]| hits.iter().map(|h| h.message.id).collect::<Vec<_>>();
        assert_eq!(ids(&paged), ids(&whole), "{order:?}");
    }
}

/// An edited message is found by its new words and no longer by its old ones; a message
/// deleted for everyone is found by nothing; a hit reads as every read of the message does.
pub fn edited_messages_match_their_new_words_and_deleted_ones_nothing<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (a, b) = (f.user("alice"), f.user("bob"));
    let g = f.group(&[a, b]);
    let edited = f.send(g, a, "the old wording");
    let deleted = f.send(g, b, "secret wording");
    let kept = f.send(g, a, "kept wording");
    let content = MessageContent::parse("the new phrasing").unwrap();
    store
        .edit(edited.id, a, &content, f.now(), &mut |_| {})
        .unwrap();
    store.delete(deleted.id, b, f.now(), &mut |_| {}).unwrap();
    let emoji = Emoji::parse("👍").unwrap();
    store.react(kept.id, b, &emoji, 20, f.now()).unwrap();

    assert!(found(store, a, "old").is_empty());
    assert_eq!(found(store, a, "\"new phrasing\""), vec![edited.id]);
    assert!(found(store, a, "secret").is_empty());
    assert_eq!(found(store, b, "wording"), vec![kept.id]);
    let hit = &search(
        store,
        a,
        "kept",
        SearchOrder::Relevance,
        SearchFilters::default(),
    )[0];
    assert_eq!(
        Some(&hit.message),
        MessageStore::find(store, kept.id).unwrap().as_ref()
    );
    let edited_hit = &search(
        store,
        a,
        "phrasing",
        SearchOrder::Recent,
        SearchFilters::default(),
    )[0];
    assert_eq!(
        Some(&edited_hit.message),
        MessageStore::find(store, edited.id).unwrap().as_ref()
    );
}

/// A user finds only messages of conversations they are a member of now, never one they hid
/// (others still find it); thread replies are found like any message.
pub fn only_members_find_messages_and_never_ones_they_hid<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (a, b, c) = (f.user("alice"), f.user("bob"), f.user("carol"));
    let g = f.group(&[a, b, c]);
    let private = f.direct(a, b);
    let in_group = f.send(g, a, "quarterly numbers");
    let in_direct = f.send(private, b, "quarterly bonus");
    let hidden = f.send(g, b, "quarterly gossip");
    store.hide(hidden.id, c, &mut |_| {}).unwrap();
    let reply = created(
        f.append(&NewMessage {
            thread_root_id: Some(in_group.id),
            ..f.message(g, c, "quarterly reply in a thread")
        })
        .unwrap(),
    );

    assert_eq!(
        sorted(&found(store, a, "quarterly")),
        sorted(&[in_group.id, in_direct.id, hidden.id, reply.id])
    );
    assert_eq!(
        sorted(&found(store, c, "quarterly")),
        sorted(&[in_group.id, reply.id]),
        "neither another pair's direct messages nor a hidden message"
    );
    assert!(found(store, c, "bonus").is_empty());
    let outsider = f.user("dave");
    assert!(found(store, outsider, "quarterly").is_empty());

    store.remove_member(g, c, f.now()).unwrap();
    assert!(
        found(store, c, "quarterly").is_empty(),
        "a member who left finds nothing"
    );
}
