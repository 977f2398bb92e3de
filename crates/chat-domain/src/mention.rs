//! Mentions: `@username` and `@all` in a message's content.
//!
//! Two steps, kept apart so that sending stays one write. [`MentionCandidates::parse`] reads
//! the names a content mentions without knowing who exists (pure, done before the message
//! is submitted); [`resolve`] decides who is mentioned among the conversation's members as
//! the store's write commits, from the ids of the members those names belong to. A message
//! without `@` has no candidates and costs the store nothing more.

use crate::UserId;
use crate::conversation::ConversationKind;
use crate::user::Username;

/// The names a message's content mentions, before anyone checks who they belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MentionCandidates {
    /// Lowercased usernames (usernames are unique regardless of case), each once, in the
    /// order they first appear. Never `all`.
    pub names: Vec<String>,
    /// `@all` appears: every member of a group but the sender. Ignored in a direct
    /// conversation.
    pub all: bool,
}

impl MentionCandidates {
    /// The word that mentions everyone in a group; no username is mentioned by it.
    pub const ALL: &'static str = "all";

    /// The mentions in `content`: an `@` at the start of the text or after a character that
    /// cannot be part of a username (so `bob@example.com` mentions nobody, and `@@bob`
    /// mentions bob), followed by a username (see [`Username`]) that ends the word: the next
    /// character, if any, is neither a username character nor another letter or digit (so
    /// `@bob's` and `@bob,` mention bob, and `@bobé` nobody). A name that ends in dots (`@bob.`
    /// at the end of a sentence) is also read without them, since a username may end in a
    /// dot: both spellings are candidates, and whichever belongs to a member is mentioned.
    pub fn parse(content: &str) -> Self {
        let mut found = Self::default();
        let chars: Vec<(usize, char)> = content.char_indices().collect();
        for (i, &(at, c)) in chars.iter().enumerate() {
            if c != '@' || i > 0 && is_username_char(chars[i - 1].1) {
                continue;
            }
            let start = at + 1;
            let end = chars[i + 1..]
                .iter()
                .find(|(_, c)| !is_username_char(*c))
                .map_or(content.len(), |&(index, _)| index);
            if content[end..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            let word = &content[start..end];
            found.add(word);
            let trimmed = word.trim_end_matches('.');
            if trimmed != word {
                found.add(trimmed);
            }
        }
        found
    }

    fn add(&mut self, word: &str) {
        if word.eq_ignore_ascii_case(Self::ALL) {
            self.all = true;
            return;
        }
        if Username::parse(word).is_err() {
            return;
        }
        let name = word.to_ascii_lowercase();
        if !self.names.contains(&name) {
            self.names.push(name);
        }
    }

    /// Nothing to resolve: no store work at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && !self.all
    }
}

fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Who a message mentions, as its store decides when the write commits: `named` are the
/// users whose usernames are among `candidates.names` (a store may pass users who are not
/// members; they are left out), `members` the conversation's members then. The sender never
/// mentions themselves. `@all` in a group mentions every other member; in a direct
/// conversation it mentions nobody. Ascending by user id, each once: the order every read
/// shows.
pub fn resolve(
    candidates: &MentionCandidates,
    kind: ConversationKind,
    sender: UserId,
    members: impl IntoIterator<Item = UserId>,
    named: &[UserId],
) -> Vec<UserId> {
    let everyone = candidates.all && kind == ConversationKind::Group;
    let mut mentioned: Vec<UserId> = members
        .into_iter()
        .filter(|member| *member != sender && (everyone || named.contains(member)))
        .collect();
    mentioned.sort();
    mentioned.dedup();
    mentioned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(content: &str) -> Vec<String> {
        MentionCandidates::parse(content).names
    }

    #[test]
    fn a_mention_is_an_at_sign_then_a_username_anywhere_a_word_can_start() {
        assert_eq!(names("@bob hi"), ["bob"]);
        assert_eq!(names("hi @bob"), ["bob"]);
        assert_eq!(names("hi\n@bob\t@carol"), ["bob", "carol"]);
        assert_eq!(names("(@bob) [@carol]"), ["bob", "carol"]);
        assert_eq!(names("@Bob_1 @x.y-z"), ["bob_1", "x.y-z"]);
    }

    #[test]
    fn mentions_ignore_case_and_come_once_in_first_appearance_order() {
        assert_eq!(names("@carol @BOB @bob @Carol"), ["carol", "bob"]);
    }

    #[test]
    fn an_email_address_mentions_nobody() {
        assert!(MentionCandidates::parse("write to bob@example.com").is_empty());
        assert!(MentionCandidates::parse("a_b@carol").is_empty());
    }

    #[test]
    fn punctuation_ends_a_mention() {
        assert_eq!(
            names("@bob, @carol: @dave! @erin? @frank's"),
            ["bob", "carol", "dave", "erin", "frank"]
        );
    }

    #[test]
    fn a_trailing_dot_is_read_with_and_without_it() {
        assert_eq!(names("thanks @bob."), ["bob.", "bob"]);
        assert_eq!(names("@bob... ok"), ["bob...", "bob"]);
        assert_eq!(names("@b.o.b"), ["b.o.b"]);
    }

    #[test]
    fn a_doubled_at_sign_still_mentions() {
        assert_eq!(names("@@bob"), ["bob"]);
    }

    #[test]
    fn a_name_running_into_other_letters_mentions_nobody() {
        assert!(MentionCandidates::parse("@bobé @zoë").is_empty());
        assert!(MentionCandidates::parse("@бob").is_empty());
        assert_eq!(names("@bob🎉 @carol—hi"), ["bob", "carol"]);
        assert_eq!(names("שלום @bob"), ["bob"]);
    }

    #[test]
    fn what_is_no_username_is_no_mention() {
        assert!(MentionCandidates::parse("@ @bo @a @ bob").is_empty());
        let long = format!("@{}", "a".repeat(Username::MAX_LEN + 1));
        assert!(MentionCandidates::parse(&long).is_empty());
        let longest = format!("@{}", "a".repeat(Username::MAX_LEN));
        assert_eq!(names(&longest).len(), 1);
        assert!(MentionCandidates::parse("@").is_empty());
        assert!(MentionCandidates::parse("bob@").is_empty());
    }

    #[test]
    fn at_all_is_everyone_and_no_username() {
        let found = MentionCandidates::parse("@ALL look, @bob");
        assert!(found.all);
        assert_eq!(found.names, ["bob"]);
        assert!(!MentionCandidates::parse("@alligator").all);
        assert!(!MentionCandidates::parse("x@all").all);
    }

    fn ids(n: usize) -> Vec<UserId> {
        let mut ids: Vec<UserId> = (0..n).map(|_| UserId::new()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn resolving_keeps_named_members_but_the_sender_in_id_order() {
        let users = ids(4);
        let (sender, members) = (users[0], &users[..3]);
        let candidates = MentionCandidates {
            names: vec!["x".into()],
            all: false,
        };
        // users[3] is no member; the sender named themselves.
        let named = [users[3], users[2], users[0], users[1]];
        let mentioned = resolve(
            &candidates,
            ConversationKind::Group,
            sender,
            members.iter().copied(),
            &named,
        );
        assert_eq!(mentioned, [users[1], users[2]]);
    }

    #[test]
    fn at_all_mentions_every_other_member_of_a_group_and_nobody_in_a_direct_chat() {
        let users = ids(3);
        let all = MentionCandidates {
            names: Vec::new(),
            all: true,
        };
        let group = resolve(
            &all,
            ConversationKind::Group,
            users[1],
            users.iter().copied(),
            &[],
        );
        assert_eq!(group, [users[0], users[2]]);
        let direct = resolve(
            &all,
            ConversationKind::Direct,
            users[0],
            users[..2].iter().copied(),
            &[],
        );
        assert!(direct.is_empty());
        let named = resolve(
            &all,
            ConversationKind::Direct,
            users[0],
            users[..2].iter().copied(),
            &[users[1]],
        );
        assert_eq!(named, [users[1]]);
    }
}
