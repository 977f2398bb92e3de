//! [`SearchStore`] over the FTS5 index `messages_search` (see the migration
//! `2026-12-11-000001_message_search`), kept in step with `messages` in each write's own
//! transaction: by [`index_appended`] for a batch of new messages, by triggers for edits and
//! deletes.

use chat_domain::UserId;
use chat_domain::ports::{SearchStore, StoreResult};
use chat_domain::search::{MessageSearch, SearchCursor, SearchHit, SearchOrder, SearchQuery, Term};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use diesel::sqlite::Sqlite;

use crate::SqliteStore;
use crate::models::MessageRow;
use crate::replies;
use crate::schema::{conversation_members, messages};

/// Up to this many conversations, a search is narrowed to the caller's conversations inside
/// the index (by the token naming each, see [`conversation_token`] and the migration); a caller in more walks the hits
/// newest first and keeps the visible ones, which are then common enough to fill a page
/// soon. Measured on 300,000 messages in 1,000 conversations (docs/benchmarks.md): a word in
/// 77% of the messages took a user of 5 conversations 116 ms at p50 unnarrowed, 29 ms
/// narrowed.
const NARROWED_UP_TO: usize = 64;

impl SearchStore for SqliteStore {
    fn search_messages(
        &self,
        user: UserId,
        search: &MessageSearch,
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>> {
        self.read(|conn| {
            let within = match search.filters.conversation {
                Some(conversation) => Some(vec![conversation.to_string()]),
                None => {
                    let mine: Vec<String> = conversation_members::table
                        .filter(conversation_members::user_id.eq(user.to_string()))
                        .select(conversation_members::conversation_id)
                        .limit(NARROWED_UP_TO as i64 + 1)
                        .load(conn)?;
                    (mine.len() <= NARROWED_UP_TO).then_some(mine)
                }
            };
            if within.as_ref().is_some_and(Vec::is_empty) {
                // In no conversation: nothing to find, and no index walk to find it.
                return Ok(Vec::new());
            }
            let ranked: Vec<Ranked> = query(user, search, within.as_deref(), limit).load(conn)?;
            let seqs: Vec<i64> = ranked.iter().map(|r| r.seq).collect();
            let mut rows: Vec<MessageRow> = messages::table
                .filter(messages::seq.eq_any(&seqs))
                .select(MessageRow::as_select())
                .load(conn)?;
            // Back into the order of the search.
            rows.sort_by_key(|row| seqs.iter().position(|s| *s == row.seq));
            let found = replies::complete(conn, rows)?;
            Ok(found
                .into_iter()
                .zip(ranked)
                .map(|(message, ranked)| SearchHit {
                    message,
                    score: ranked.score,
                })
                .collect())
        })
    }
}

/// Indexes the messages with seqs `first..=last`, all inserted by the batch being committed
/// (the single writer takes every seq in between for them), in the batch's transaction: one
/// statement per batch rather than a trigger per message, on the writer every send waits
/// for. The conversation's token is taken as the migration's triggers take it.
pub(crate) fn index_appended(
    conn: &mut diesel::SqliteConnection,
    first: i64,
    last: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO messages_search (rowid, content, conversation) \
         SELECT seq, content, substr(conversation_id, 25) FROM messages \
         WHERE seq BETWEEN ? AND ?",
    )
    .bind::<BigInt, _>(first)
    .bind::<BigInt, _>(last)
    .execute(conn)
}

#[derive(QueryableByName)]
struct Ranked {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// The seqs and scores of one page of `search`, best first.
///
/// The hits are walked newest first straight from the index (its rowid is the seq; the seq
/// bounds of the filters and of a recent-order cursor are rowid bounds FTS5 seeks to), each
/// joined to its message for the visibility rule and the other filters, so a page in recent
/// order stops at `limit` visible hits. In relevance order bm25 ranks at most the newest
/// [`MessageSearch::RELEVANCE_WINDOW`] visible hits. `within`: the conversations to narrow
/// the index's walk to, if any.
fn query(
    user: UserId,
    search: &MessageSearch,
    within: Option<&[String]>,
    limit: u32,
) -> diesel::query_builder::BoxedSqlQuery<'static, Sqlite, diesel::query_builder::SqlQuery> {
    let f = &search.filters;
    let mut sql = String::from(
        "SELECT s.rowid AS seq, {score} AS score \
         FROM messages_search s JOIN messages m ON m.seq = s.rowid \
         WHERE messages_search MATCH ? \
           AND m.deleted_at IS NULL \
           AND m.conversation_id IN \
               (SELECT conversation_id FROM conversation_members WHERE user_id = ?) \
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
               WHERE h.user_id = ? AND h.message_id = m.id)",
    );
    let mut texts: Vec<String> = vec![
        fts5_match(&search.query, within),
        user.to_string(),
        user.to_string(),
    ];
    let mut below: Option<i64> = f.before.map(|s| s.0);
    if let Some(SearchCursor::Recent { seq }) = search.cursor {
        below = Some(below.map_or(seq.0, |b| b.min(seq.0)));
    }
    if let Some(conversation) = f.conversation {
        sql.push_str(" AND m.conversation_id = ?");
        texts.push(conversation.to_string());
    }
    if let Some(sender) = f.sender {
        sql.push_str(" AND m.sender_id = ?");
        texts.push(sender.to_string());
    }
    let mut seqs: Vec<i64> = Vec::new();
    if let Some(below) = below {
        sql.push_str(" AND s.rowid < ?");
        seqs.push(below);
    }
    if let Some(after) = f.after {
        sql.push_str(" AND s.rowid > ?");
        seqs.push(after.0);
    }
    sql.push_str(" ORDER BY s.rowid DESC LIMIT ?");
    let mut relevance_cursor = None;
    let sql = match search.order {
        SearchOrder::Recent => {
            seqs.push(i64::from(limit));
            sql.replace("{score}", "0.0")
        }
        SearchOrder::Relevance => {
            seqs.push(MessageSearch::RELEVANCE_WINDOW as i64);
            // bm25() is lower for a better match; the conversation column does not count.
            let window = sql.replace("{score}", "-bm25(messages_search, 1.0, 0.0)");
            let cut = match search.cursor {
                Some(SearchCursor::Relevance { score, seq }) => {
                    relevance_cursor = Some((score, seq.0));
                    "WHERE score < ? OR (score = ? AND seq < ?)"
                }
                _ => "",
            };
            format!("SELECT seq, score FROM ({window}) {cut} ORDER BY score DESC, seq DESC LIMIT ?")
        }
    };
    let mut query = diesel::sql_query(sql).into_boxed::<Sqlite>();
    for text in texts {
        query = query.bind::<Text, _>(text);
    }
    for seq in seqs {
        query = query.bind::<BigInt, _>(seq);
    }
    if let Some((score, seq)) = relevance_cursor {
        query = query
            .bind::<Double, _>(score)
            .bind::<Double, _>(score)
            .bind::<BigInt, _>(seq);
    }
    if search.order == SearchOrder::Relevance {
        query = query.bind::<BigInt, _>(i64::from(limit));
    }
    query
}

/// The FTS5 query of `query`, confined to the `content` column, and to the conversations
/// `within` if given: every term quoted, so nothing in it is FTS5 syntax (a word holds only
/// letters and digits anyway; quotes are doubled should one ever not).
pub(crate) fn fts5_match(query: &SearchQuery, within: Option<&[String]>) -> String {
    let quote = |word: &str| format!("\"{}\"", word.replace('"', "\"\""));
    let terms = query
        .terms()
        .iter()
        .map(|term| match term {
            Term::Word(word) => quote(word),
            Term::Prefix(prefix) => format!("{}*", quote(prefix)),
            Term::Phrase(words) => quote(&words.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    match within {
        Some(ids) if !ids.is_empty() => format!(
            "{{content}} : ({terms}) AND {{conversation}} : ({})",
            ids.iter()
                .map(|id| quote(conversation_token(id)))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        _ => format!("{{content}} : ({terms})"),
    }
}

/// The token the index holds for a message's conversation: the last 12 hex digits of its
/// id, as the migration's triggers take them (`substr(conversation_id, 25)`). It only narrows
/// the index's walk; membership is checked on the message itself.
fn conversation_token(id: &str) -> &str {
    id.get(24..).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_is_quoted_in_the_match_string() {
        let query = SearchQuery::parse(r#"NEAR deploy* "to prod" a:b"#).unwrap();
        assert_eq!(
            fts5_match(&query, None),
            r#"{content} : ("near" AND "deploy"* AND "to prod" AND "a b")"#
        );
        let ids = ["1b4e28ba-2fa1-11d2-883f-0016d3cca427".to_owned()];
        assert_eq!(
            fts5_match(&query, Some(&ids)),
            r#"{content} : ("near" AND "deploy"* AND "to prod" AND "a b") AND {conversation} : ("0016d3cca427")"#
        );
    }
}
