//! [`SearchStore`] over the generated `messages.content_words` tsvector and its GIN index
//! (see the migration `2026-12-11-000001_message_search`).

use chat_domain::UserId;
use chat_domain::ports::{SearchStore, StoreResult};
use chat_domain::search::{MessageSearch, SearchCursor, SearchHit, SearchOrder, SearchQuery, Term};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text, Uuid as SqlUuid};
use uuid::Uuid;

use crate::PgStore;
use crate::models::MessageRow;
use crate::replies;
use crate::schema::messages;

impl SearchStore for PgStore {
    fn search_messages(
        &self,
        user: UserId,
        search: &MessageSearch,
        limit: u32,
    ) -> StoreResult<Vec<SearchHit>> {
        self.read(|conn| {
            let ranked: Vec<Ranked> = query(user, search, limit).load(conn)?;
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

#[derive(QueryableByName)]
struct Ranked {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Double)]
    score: f64,
}

/// The seqs and scores of one page of `search`, best first: the visible hits newest first,
/// cut at `limit` in recent order; in relevance order the newest
/// [`MessageSearch::RELEVANCE_WINDOW`] of them ranked by `ts_rank_cd`, normalised by the
/// message's length (more matches in fewer words rank higher, as bm25 has it in SQLite).
fn query(
    user: UserId,
    search: &MessageSearch,
    limit: u32,
) -> diesel::query_builder::BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery> {
    let f = &search.filters;
    let mut n = 2;
    let mut next = || {
        n += 1;
        n
    };
    let mut sql = String::from(
        "SELECT m.seq, {score} AS score \
         FROM messages m, to_tsquery('simple', $1) q \
         WHERE m.content_words @@ q \
           AND m.deleted_at IS NULL \
           AND m.conversation_id IN \
               (SELECT conversation_id FROM conversation_members WHERE user_id = $2) \
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h \
               WHERE h.user_id = $2 AND h.message_id = m.id)",
    );
    let mut uuids: Vec<Uuid> = Vec::new();
    if let Some(conversation) = f.conversation {
        sql.push_str(&format!(" AND m.conversation_id = ${}", next()));
        uuids.push(conversation.into());
    }
    if let Some(sender) = f.sender {
        sql.push_str(&format!(" AND m.sender_id = ${}", next()));
        uuids.push(sender.into());
    }
    let mut below: Option<i64> = f.before.map(|s| s.0);
    if let Some(SearchCursor::Recent { seq }) = search.cursor {
        below = Some(below.map_or(seq.0, |b| b.min(seq.0)));
    }
    let mut seqs: Vec<i64> = Vec::new();
    if let Some(below) = below {
        sql.push_str(&format!(" AND m.seq < ${}", next()));
        seqs.push(below);
    }
    if let Some(after) = f.after {
        sql.push_str(&format!(" AND m.seq > ${}", next()));
        seqs.push(after.0);
    }
    sql.push_str(&format!(" ORDER BY m.seq DESC LIMIT ${}", next()));
    let mut relevance_cursor = None;
    let sql = match search.order {
        SearchOrder::Recent => {
            seqs.push(i64::from(limit));
            sql.replace("{score}", "0.0::float8")
        }
        SearchOrder::Relevance => {
            seqs.push(MessageSearch::RELEVANCE_WINDOW as i64);
            let window = sql.replace("{score}", "ts_rank_cd(m.content_words, q, 2)::float8");
            let cut = match search.cursor {
                Some(SearchCursor::Relevance { score, seq }) => {
                    relevance_cursor = Some((score, seq.0));
                    let (s, q) = (next(), next());
                    format!("WHERE score < ${s} OR (score = ${s} AND seq < ${q})")
                }
                _ => String::new(),
            };
            format!(
                "SELECT seq, score FROM ({window}) w {cut} \
                 ORDER BY score DESC, seq DESC LIMIT ${}",
                next()
            )
        }
    };
    let mut query = diesel::sql_query(sql)
        .into_boxed::<Pg>()
        .bind::<Text, _>(tsquery(&search.query))
        .bind::<SqlUuid, _>(Uuid::from(user));
    for uuid in uuids {
        query = query.bind::<SqlUuid, _>(uuid);
    }
    for seq in seqs {
        query = query.bind::<BigInt, _>(seq);
    }
    if let Some((score, seq)) = relevance_cursor {
        query = query.bind::<Double, _>(score).bind::<BigInt, _>(seq);
    }
    if search.order == SearchOrder::Relevance {
        query = query.bind::<BigInt, _>(i64::from(limit));
    }
    query
}

/// The `to_tsquery` text of `query`: every word a quoted lexeme (a word holds only letters
/// and digits anyway; quotes and backslashes are escaped should one ever not), prefixes
/// `:*`, phrases joined by `<->`, terms by `&`.
pub(crate) fn tsquery(query: &SearchQuery) -> String {
    let quote = |word: &str| format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"));
    query
        .terms()
        .iter()
        .map(|term| match term {
            Term::Word(word) => quote(word),
            Term::Prefix(prefix) => format!("{}:*", quote(prefix)),
            Term::Phrase(words) => format!(
                "({})",
                words
                    .iter()
                    .map(|w| quote(w))
                    .collect::<Vec<_>>()
                    .join(" <-> ")
            ),
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_a_quoted_lexeme() {
        let query = SearchQuery::parse(r#"NEAR deploy* "to prod" a:b"#).unwrap();
        assert_eq!(
            tsquery(&query),
            "'near' & 'deploy':* & ('to' <-> 'prod') & ('a' <-> 'b')"
        );
    }
}
