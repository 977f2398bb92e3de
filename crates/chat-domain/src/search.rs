//! Full-text search over messages: the query a client writes, parsed once into terms every
//! store can match; the filters, order and cursor of a search; and the snippet with highlights
//! a hit shows.
//!
//! A query is words, `"exact phrases"` and `prefix*` terms, all of which a message must
//! contain. There are no operators: `AND`, `NEAR`, `-`, `:` or `(` are words or separators
//! like any other, so nothing a user types can change the meaning of a store's query. Words
//! are what every store indexes: the runs of letters and digits, compared ignoring case; every
//! other character separates them (`deploy-prod` is the phrase `"deploy prod"`).
//!
//! The snippet and its highlights are computed here, from the parsed query over the message's
//! text, so that every store shows the same snippet, and as character ranges rather than
//! markup, so that no client ever renders user text as HTML.

use crate::message::{Message, Seq};
use crate::validation::FieldError;
use crate::{ConversationId, UserId};

/// One thing a message must contain, in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A whole word.
    Word(String),
    /// A word starting with this (at least [`SearchQuery::MIN_PREFIX_CHARS`] characters).
    Prefix(String),
    /// These words, one right after the other (at least two).
    Phrase(Vec<String>),
}

/// A parsed search query: at least one term, at most [`SearchQuery::MAX_TERMS`], no repeats.
/// Every word in it is a run of letters and digits in lowercase, so a store may quote it
/// into its own query language as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

impl SearchQuery {
    /// The longest query, in characters.
    pub const MAX_CHARS: usize = 200;
    /// The most terms (words, phrases, prefixes) in one query.
    pub const MAX_TERMS: usize = 10;
    /// The shortest prefix: a one-letter prefix matches most of the index.
    pub const MIN_PREFIX_CHARS: usize = 2;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(FieldError::new(
                "q",
                format!("must be at most {} characters long", Self::MAX_CHARS),
            ));
        }
        let mut terms: Vec<Term> = Vec::new();
        let mut rest = raw;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            rest = &rest[start..];
            let term = if let Some(quoted) = rest.strip_prefix('"') {
                // A phrase runs to the next quote, or to the end when there is none.
                let (inside, after) = quoted.split_once('"').unwrap_or((quoted, ""));
                rest = after;
                phrase(words(inside).map(|(_, w)| w).collect(), false)
            } else {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                let chunk = &rest[..end];
                rest = &rest[end..];
                let prefix = chunk.ends_with('*');
                phrase(words(chunk).map(|(_, w)| w).collect(), prefix)
            };
            match term {
                Some(Term::Prefix(p)) if p.chars().count() < Self::MIN_PREFIX_CHARS => {
                    return Err(FieldError::new(
                        "q",
                        format!(
                            "a prefix* needs at least {} letters or digits",
                            Self::MIN_PREFIX_CHARS
                        ),
                    ));
                }
                Some(term) if !terms.contains(&term) => terms.push(term),
                _ => {}
            }
        }
        if terms.is_empty() {
            return Err(FieldError::new("q", "must contain at least one word"));
        }
        if terms.len() > Self::MAX_TERMS {
            return Err(FieldError::new(
                "q",
                format!("must have at most {} words or phrases", Self::MAX_TERMS),
            ));
        }
        Ok(Self { terms })
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Whether `text` contains every term: the rule every store's index implements.
    pub fn matches(&self, text: &str) -> bool {
        let words: Vec<String> = words(text).map(|(_, w)| w).collect();
        self.terms
            .iter()
            .all(|term| !occurrences(term, &words).is_empty())
    }

    /// The character ranges `[start, end)` of `text` that match a term, ascending and not
    /// overlapping.
    pub fn highlights(&self, text: &str) -> Vec<(usize, usize)> {
        let spans: Vec<(usize, usize)> = words(text).map(|(span, _)| span).collect();
        let words: Vec<String> = words(text).map(|(_, w)| w).collect();
        let mut ranges: Vec<(usize, usize)> = self
            .terms
            .iter()
            .flat_map(|term| {
                let len = match term {
                    Term::Phrase(p) => p.len(),
                    _ => 1,
                };
                occurrences(term, &words)
                    .into_iter()
                    .map(|i| (spans[i].0, spans[i + len - 1].1))
                    .collect::<Vec<_>>()
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

/// The term a run of words makes: one word (a prefix when `prefix`), a phrase, or nothing.
fn phrase(mut words: Vec<String>, prefix: bool) -> Option<Term> {
    match words.len() {
        0 => None,
        1 => {
            let word = words.remove(0);
            Some(if prefix {
                Term::Prefix(word)
            } else {
                Term::Word(word)
            })
        }
        _ => Some(Term::Phrase(words)),
    }
}

/// The words of `text` with their character ranges: runs of letters and digits, lowercased.
pub fn words(text: &str) -> impl Iterator<Item = ((usize, usize), String)> + '_ {
    let mut chars = text.chars().enumerate().peekable();
    std::iter::from_fn(move || {
        while chars.next_if(|(_, c)| !c.is_alphanumeric()).is_some() {}
        let (start, first) = chars.next()?;
        let mut word: String = first.to_lowercase().collect();
        let mut end = start + 1;
        while let Some((i, c)) = chars.next_if(|(_, c)| c.is_alphanumeric()) {
            word.extend(c.to_lowercase());
            end = i + 1;
        }
        Some(((start, end), word))
    })
}

/// The indexes in `words` where `term` matches.
fn occurrences(term: &Term, words: &[String]) -> Vec<usize> {
    match term {
        Term::Word(w) => (0..words.len()).filter(|&i| words[i] == *w).collect(),
        Term::Prefix(p) => (0..words.len())
            .filter(|&i| words[i].starts_with(p.as_str()))
            .collect(),
        Term::Phrase(p) => words
            .windows(p.len())
            .enumerate()
            .filter(|(_, w)| *w == p.as_slice())
            .map(|(i, _)| i)
            .collect(),
    }
}

/// Which hits come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchOrder {
    /// The best match first (see [`SearchHit::score`]), the newest first among equals.
    #[default]
    Relevance,
    /// The newest first.
    Recent,
}

impl SearchOrder {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw {
            "relevance" => Ok(Self::Relevance),
            "recent" => Ok(Self::Recent),
            _ => Err(FieldError::new(
                "sort",
                "must be \"relevance\" or \"recent\"",
            )),
        }
    }
}

/// Where the previous page of a search ended: the last hit's place in the order. Opaque to
/// clients ([`SearchCursor::encode`]); a page continues strictly after it, so a hit never
/// shows on two pages and none is skipped while the index stays as it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SearchCursor {
    Relevance { score: f64, seq: Seq },
    Recent { seq: Seq },
}

impl SearchCursor {
    /// The cursor that continues after `hit` in `order`.
    pub fn after(hit: &SearchHit, order: SearchOrder) -> Self {
        match order {
            SearchOrder::Relevance => Self::Relevance {
                score: hit.score,
                seq: hit.message.seq,
            },
            SearchOrder::Recent => Self::Recent {
                seq: hit.message.seq,
            },
        }
    }

    /// The cursor as a client carries it. The score is kept bit for bit.
    pub fn encode(&self) -> String {
        match self {
            Self::Relevance { score, seq } => format!("r{:016x}{:x}", score.to_bits(), seq.0),
            Self::Recent { seq } => format!("n{:x}", seq.0),
        }
    }

    /// A cursor from [`Self::encode`], for a search in `order`: anything else (a cursor of
    /// the other order too) is a field error on `cursor`.
    pub fn decode(raw: &str, order: SearchOrder) -> Result<Self, FieldError> {
        let bad = || FieldError::new("cursor", "is not a cursor of this search's order");
        let seq = |hex: &str| {
            i64::from_str_radix(hex, 16)
                .ok()
                .filter(|s| *s > 0 && !hex.starts_with(['+', '-']))
                .map(Seq)
        };
        let cursor = match (order, raw.split_at_checked(1)) {
            (SearchOrder::Relevance, Some(("r", rest))) if rest.len() > 16 && rest.is_ascii() => {
                let (score, at) = rest.split_at(16);
                let score = u64::from_str_radix(score, 16)
                    .ok()
                    .map(f64::from_bits)
                    .filter(|s| s.is_finite());
                match (score, seq(at)) {
                    (Some(score), Some(seq)) => Self::Relevance { score, seq },
                    _ => return Err(bad()),
                }
            }
            (SearchOrder::Recent, Some(("n", rest))) => match seq(rest) {
                Some(seq) => Self::Recent { seq },
                None => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        Ok(cursor)
    }

    /// Whether a hit scored `score` at `seq` comes after this cursor in its order.
    pub fn precedes(&self, score: f64, seq: Seq) -> bool {
        match *self {
            Self::Relevance { score: s, seq: q } => score < s || (score == s && seq < q),
            Self::Recent { seq: q } => seq < q,
        }
    }
}

/// What a search is narrowed to, beyond the caller's visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchFilters {
    pub conversation: Option<ConversationId>,
    pub sender: Option<UserId>,
    /// Only messages with a seq below this.
    pub before: Option<Seq>,
    /// Only messages with a seq above this.
    pub after: Option<Seq>,
}

/// One search, as a store runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageSearch {
    pub query: SearchQuery,
    pub filters: SearchFilters,
    pub order: SearchOrder,
    /// Where the previous page ended; `None` for the first page.
    pub cursor: Option<SearchCursor>,
}

impl MessageSearch {
    /// In relevance order, only the newest this many hits a user may see are ranked: the
    /// bound that keeps ranking a very common word cheap (a chat search favours the recent;
    /// an older message is still found by a rarer word, a filter, or `sort=recent`).
    pub const RELEVANCE_WINDOW: usize = 1000;
}

/// A message a search found, with its score: higher is a better match. Scores are comparable
/// only within one search on one store.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub message: Message,
    pub score: f64,
}

/// What a hit shows of its message: a stretch of its text around the first match, and the
/// character ranges of the snippet that match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    /// `[start, end)` in characters of `text`, ascending, never overlapping.
    pub highlights: Vec<(usize, usize)>,
}

impl Snippet {
    /// The most characters of the message a snippet shows (plus an ellipsis at either cut).
    pub const MAX_CHARS: usize = 200;
    /// How much text a snippet keeps before its first match.
    const LEAD_CHARS: usize = 60;

    /// The snippet of `text` for `query`.
    pub fn of(query: &SearchQuery, text: &str) -> Self {
        let highlights = query.highlights(text);
        let total = text.chars().count();
        if total <= Self::MAX_CHARS {
            return Self {
                text: text.to_owned(),
                highlights,
            };
        }
        let first = highlights.first().map_or(0, |h| h.0);
        let mut start = first.saturating_sub(Self::LEAD_CHARS);
        // Start at a word's beginning rather than in the middle of one.
        let chars: Vec<char> = text.chars().collect();
        while start > 0 && start < first && chars[start - 1].is_alphanumeric() {
            start += 1;
        }
        let end = (start + Self::MAX_CHARS).min(total);
        let lead = usize::from(start > 0);
        let mut snippet: String = if start > 0 {
            "…".into()
        } else {
            String::new()
        };
        snippet.extend(&chars[start..end]);
        if end < total {
            snippet.push('…');
        }
        Self {
            text: snippet,
            highlights: highlights
                .into_iter()
                .filter(|&(s, e)| e > start && s < end)
                .map(|(s, e)| (s.max(start) - start + lead, e.min(end) - start + lead))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(raw: &str) -> Vec<Term> {
        SearchQuery::parse(raw).unwrap().terms().to_vec()
    }

    fn word(w: &str) -> Term {
        Term::Word(w.into())
    }

    #[test]
    fn a_query_is_words_phrases_and_prefixes_in_lowercase() {
        assert_eq!(
            terms(r#"Deploy "Exact  phrase" prod* "#),
            vec![
                word("deploy"),
                Term::Phrase(vec!["exact".into(), "phrase".into()]),
                Term::Prefix("prod".into())
            ]
        );
        assert_eq!(
            terms("deploy-prod"),
            vec![Term::Phrase(vec!["deploy".into(), "prod".into()])]
        );
        assert_eq!(terms(r#""single""#), vec![word("single")]);
        assert_eq!(terms("a a A"), vec![word("a")]);
        assert_eq!(terms(r#""unclosed phrase"#).len(), 1);
    }

    #[test]
    fn operators_and_special_characters_are_words_or_separators() {
        let phrase = |w: &[&str]| Term::Phrase(w.iter().map(|w| w.to_string()).collect());
        assert_eq!(
            terms(r#"NEAR(a b) AND -c OR d:e ^f"#),
            vec![
                phrase(&["near", "a"]),
                word("b"),
                word("and"),
                word("c"),
                word("or"),
                phrase(&["d", "e"]),
                word("f"),
            ]
        );
        assert_eq!(terms("café 🎉 日本語"), vec![word("café"), word("日本語")]);
    }

    #[test]
    fn empty_operator_only_long_or_crowded_queries_are_refused_on_q() {
        for raw in ["", "   ", "\"\"", "* - : ( ) 🎉", "a*"] {
            assert_eq!(SearchQuery::parse(raw).unwrap_err().field, "q", "{raw:?}");
        }
        assert!(SearchQuery::parse(&"x".repeat(201)).is_err());
        assert!(SearchQuery::parse(&"x".repeat(200)).is_ok());
        let eleven: Vec<String> = (0..11).map(|i| format!("w{i}")).collect();
        assert!(SearchQuery::parse(&eleven.join(" ")).is_err());
        assert!(SearchQuery::parse(&eleven[..10].join(" ")).is_ok());
    }

    #[test]
    fn a_query_matches_text_with_every_term() {
        let q = SearchQuery::parse(r#"deploy "to prod" stag*"#).unwrap();
        assert!(q.matches("Deploying? No: deploy to PROD, then staging"));
        assert!(!q.matches("deploy prod to staging"));
        assert!(!q.matches("deploy to prod"));
    }

    #[test]
    fn highlights_are_the_character_ranges_of_every_match_merged() {
        let q = SearchQuery::parse(r#"deploy "to prod" stag*"#).unwrap();
        let text = "é deploy to prod, staging; deployed";
        assert_eq!(q.highlights(text), vec![(2, 8), (9, 16), (18, 25)]);
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[9..16].iter().collect::<String>(), "to prod");
        // Overlapping matches come as one range.
        let q = SearchQuery::parse(r#""a b" "b c""#).unwrap();
        assert_eq!(q.highlights("a b c"), vec![(0, 5)]);
    }

    #[test]
    fn a_long_message_is_cut_around_its_first_match() {
        let q = SearchQuery::parse("needle").unwrap();
        let text = format!("{} needle {}", "hay ".repeat(100), "straw ".repeat(100));
        let snippet = Snippet::of(&q, &text);
        assert!(snippet.text.starts_with('…') && snippet.text.ends_with('…'));
        assert!(snippet.text.chars().count() <= Snippet::MAX_CHARS + 2);
        let chars: Vec<char> = snippet.text.chars().collect();
        let (s, e) = snippet.highlights[0];
        assert_eq!(chars[s..e].iter().collect::<String>(), "needle");
        let short = Snippet::of(&q, "a needle");
        assert_eq!(short.text, "a needle");
        assert_eq!(short.highlights, vec![(2, 8)]);
    }

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let relevance = SearchCursor::Relevance {
            score: 1.25e-7,
            seq: Seq(42),
        };
        let encoded = relevance.encode();
        assert_eq!(
            SearchCursor::decode(&encoded, SearchOrder::Relevance).unwrap(),
            relevance
        );
        assert!(SearchCursor::decode(&encoded, SearchOrder::Recent).is_err());
        let recent = SearchCursor::Recent { seq: Seq(7) };
        assert_eq!(
            SearchCursor::decode(&recent.encode(), SearchOrder::Recent).unwrap(),
            recent
        );
        for bad in [
            "",
            "r",
            "n",
            "n-1",
            "n0",
            "nzz",
            "r12",
            "é",
            "rffffffffffffffff1",
            "n+1",
        ] {
            for order in [SearchOrder::Relevance, SearchOrder::Recent] {
                assert_eq!(
                    SearchCursor::decode(bad, order).unwrap_err().field,
                    "cursor",
                    "{bad:?}"
                );
            }
        }
    }
}
