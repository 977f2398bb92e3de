//! Property tests: every parser accepts exactly what its rule says, for any input, and never
//! panics.
//!
//! Each rule is written here again, in the words of the API documentation, rather than taken
//! from the parser: a parser that drifts from its rule fails. Lengths are drawn around each
//! bound (empty, one, the limit minus one, the limit, one over) and text mixes one-, two-,
//! three- and four-byte characters, so counting bytes instead of characters shows.

use proptest::prelude::*;

use crate::conversation::ConversationName;
use crate::message::{ClientMessageId, MessageContent};
use crate::user::{Email, Password, Username};

/// A length near one of `bounds` (each of them, one less, one more), or any up to the
/// largest bound and a little beyond.
fn length_around(bounds: &[usize]) -> impl Strategy<Value = usize> + use<> {
    let top = bounds.iter().copied().max().unwrap_or(0) + 2;
    let near: Vec<usize> = bounds
        .iter()
        .flat_map(|&b| [b.saturating_sub(1), b, b + 1])
        .chain([0, 1])
        .collect();
    prop_oneof![3 => proptest::sample::select(near), 1 => 0..=top]
}

/// `len` characters drawn from `alphabet`.
fn text_of(alphabet: &'static [char], len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(alphabet), len)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Printable characters of 1 to 4 bytes in UTF-8, and the space: free text that every text
/// rule accepts character by character (no control characters, no bidi overrides).
const PRINTABLE_AND_SPACE: &[char] =
    &['a', 'Z', '7', '!', 'é', 'ß', 'Ж', '中', '€', '😀', '𝄞', ' '];
/// What may surround text and is trimmed away.
const PADDING: &[char] = &[' ', '\t', '\n'];

/// Free text around `bounds`, padded with whitespace on either side now and then.
fn padded_text(bounds: &'static [usize]) -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(0usize), 1..=3usize],
        length_around(bounds),
        prop_oneof![Just(0usize), 1..=3usize],
    )
        .prop_flat_map(|(before, len, after)| {
            (
                text_of(PADDING, before),
                text_of(PRINTABLE_AND_SPACE, len),
                text_of(PADDING, after),
            )
        })
        .prop_map(|(before, body, after)| format!("{before}{body}{after}"))
}

/// The characters of a trimmed text, the unit every length rule counts in.
fn trimmed_chars(raw: &str) -> usize {
    raw.trim().chars().count()
}

const USERNAME_ALPHABET: &[char] = &[
    'a', 'z', 'A', 'Z', '0', '9', '_', '.', '-', 'm', 'Q', '5', // allowed
    'é', ' ', '@', '!', 'ı', '٣', // not allowed: non-ASCII letters and digits included
];

fn username_like() -> impl Strategy<Value = String> {
    length_around(&[3, 32]).prop_flat_map(|len| {
        prop_oneof![
            // Mostly allowed characters, so that the length bounds are reached often.
            3 => text_of(&USERNAME_ALPHABET[..12], len),
            1 => text_of(USERNAME_ALPHABET, len),
        ]
    })
}

const PASSWORD_ALPHABET: &[char] = &['a', '7', ' ', 'é', '中', '😀'];

/// One way an email address can be wrong, applied to an otherwise valid one.
#[derive(Debug, Clone, Copy)]
enum EmailFlaw {
    EmptyLocal,
    LocalOver64Bytes,
    NoAt,
    SecondAt,
    NoDotInDomain,
    EmptyLabel,
    LabelStartsWithHyphen,
    LabelEndsWithHyphen,
    UnderscoreInDomain,
    SpaceInside,
    Over254Bytes,
}

fn email_flaw() -> impl Strategy<Value = Option<EmailFlaw>> {
    use EmailFlaw::*;
    prop_oneof![
        3 => Just(None),
        2 => proptest::sample::select(vec![
            EmptyLocal,
            LocalOver64Bytes,
            NoAt,
            SecondAt,
            NoDotInDomain,
            EmptyLabel,
            LabelStartsWithHyphen,
            LabelEndsWithHyphen,
            UnderscoreInDomain,
            SpaceInside,
            Over254Bytes,
        ])
        .prop_map(Some),
    ]
}

/// A valid address (a local part of up to 64 bytes, a domain of two to four labels of
/// letters, digits and inner hyphens), then `flaw` applied to it.
fn email_with(flaw: Option<EmailFlaw>) -> impl Strategy<Value = String> {
    let local = prop_oneof!["[a-z0-9._+-]{1,20}", "[A-Za-z0-9]{60,64}"];
    let label = prop_oneof!["[a-z0-9]{1,12}", "[A-Za-z0-9][a-z0-9-]{0,10}[a-z0-9]"];
    let labels = proptest::collection::vec(label, 2..=4);
    let padding = "[ \t\n]{0,2}";
    (local, labels, padding.prop_map(String::from)).prop_map(move |(local, labels, pad)| {
        use EmailFlaw::*;
        let mut local = local;
        let mut labels = labels;
        match flaw {
            None => {}
            Some(EmptyLocal) => local.clear(),
            Some(LocalOver64Bytes) => local = "l".repeat(65),
            Some(NoAt) => {}
            Some(SecondAt) => local.push_str("@x"),
            Some(NoDotInDomain) => labels.truncate(1),
            Some(EmptyLabel) => labels.insert(1, String::new()),
            Some(LabelStartsWithHyphen) => labels[0].insert(0, '-'),
            Some(LabelEndsWithHyphen) => labels[0].push('-'),
            Some(UnderscoreInDomain) => labels[0].push_str("_x"),
            Some(SpaceInside) => local.push_str(" x"),
            Some(Over254Bytes) => {
                // Every label stays valid; only the whole is too long.
                let filler = format!("{}.", "d".repeat(60));
                let domain_len: usize = labels.iter().map(|l| l.len() + 1).sum();
                let needed = 255usize.saturating_sub(local.len() + domain_len);
                labels.insert(
                    0,
                    filler
                        .repeat(needed.div_ceil(61))
                        .trim_end_matches('.')
                        .into(),
                );
            }
        }
        let at = if matches!(flaw, Some(NoAt)) { "" } else { "@" };
        format!("{pad}{local}{at}{}{pad}", labels.join("."))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn usernames_are_accepted_exactly_when_3_to_32_ascii_letters_digits_or_dot_dash_underscore(
        raw in username_like()
    ) {
        let rule = (3..=32).contains(&raw.chars().count())
            && raw.bytes().all(|b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
        match Username::parse(&raw) {
            Ok(name) => {
                prop_assert!(rule, "{raw:?} was accepted");
                prop_assert_eq!(name.as_str(), raw.as_str());
            }
            Err(error) => {
                prop_assert!(!rule, "{raw:?} was refused: {error}");
                prop_assert_eq!(error.field, "username");
            }
        }
    }

    #[test]
    fn passwords_are_accepted_exactly_from_8_characters_to_72_bytes(
        raw in length_around(&[8, 18, 24, 36, 72]).prop_flat_map(|len| text_of(PASSWORD_ALPHABET, len))
    ) {
        let rule = raw.chars().count() >= 8 && raw.len() <= 72;
        match Password::parse("password", &raw) {
            // Kept as given: no trimming, since spaces are part of a password.
            Ok(password) => {
                prop_assert!(rule, "{raw:?} was accepted");
                prop_assert_eq!(password.expose(), raw.as_str());
            }
            Err(error) => prop_assert!(!rule, "{raw:?} was refused: {error}"),
        }
    }

    #[test]
    fn message_content_is_accepted_exactly_when_1_to_4000_characters_once_trimmed(
        raw in padded_text(&[1, 4000])
    ) {
        let rule = (1..=4000).contains(&trimmed_chars(&raw));
        match MessageContent::parse(&raw) {
            Ok(content) => {
                prop_assert!(rule, "{} characters were accepted", raw.chars().count());
                prop_assert_eq!(content.as_str(), raw.trim());
            }
            Err(error) => {
                prop_assert!(!rule, "{} characters were refused: {error}", trimmed_chars(&raw));
                prop_assert_eq!(error.field, "content");
            }
        }
    }

    #[test]
    fn conversation_names_are_accepted_exactly_when_1_to_100_characters_once_trimmed(
        raw in padded_text(&[1, 100])
    ) {
        let rule = (1..=100).contains(&trimmed_chars(&raw));
        match ConversationName::parse(&raw) {
            Ok(name) => {
                prop_assert!(rule, "{raw:?} was accepted");
                prop_assert_eq!(name.as_str(), raw.trim());
            }
            Err(error) => {
                prop_assert!(!rule, "{raw:?} was refused: {error}");
                prop_assert_eq!(error.field, "name");
            }
        }
    }

    #[test]
    fn client_message_ids_are_accepted_exactly_when_1_to_100_characters_without_controls(
        (raw, control) in (
            length_around(&[1, 100]).prop_flat_map(|len| text_of(PRINTABLE_AND_SPACE, len)),
            proptest::option::weighted(0.2, (any::<proptest::sample::Index>(), prop_oneof![
                Just('\0'), Just('\n'), Just('\u{1b}'), Just('\u{7f}'), Just('\u{85}'),
            ])),
        ).prop_map(|(text, control)| {
            let Some((at, c)) = control else { return (text, false) };
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(at.index(chars.len() + 1), c);
            (chars.into_iter().collect::<String>(), true)
        })
    ) {
        // Kept as given: an id is matched byte for byte, so nothing is trimmed.
        let rule = (1..=100).contains(&raw.chars().count()) && !control;
        match ClientMessageId::parse(&raw) {
            Ok(id) => {
                prop_assert!(rule, "{raw:?} was accepted");
                prop_assert_eq!(id.as_str(), raw.as_str());
            }
            Err(error) => prop_assert!(!rule, "{raw:?} was refused: {error}"),
        }
    }

    #[test]
    fn emails_are_accepted_exactly_when_well_formed(
        (flaw, raw) in email_flaw().prop_flat_map(|flaw| (Just(flaw), email_with(flaw)))
    ) {
        match Email::parse(&raw) {
            Ok(email) => {
                prop_assert!(flaw.is_none(), "{raw:?} was accepted despite {flaw:?}");
                prop_assert_eq!(email.as_str(), raw.trim());
            }
            Err(error) => {
                prop_assert!(flaw.is_some(), "{raw:?} was refused: {error}");
                prop_assert_eq!(error.field, "email");
            }
        }
    }

    /// Any text at all: nothing panics, the rules that are about characters hold exactly, and
    /// whatever is accepted is within its length bounds and parses again to itself.
    #[test]
    fn every_parser_keeps_its_rule_on_any_input(raw in any::<String>()) {
        let username_rule = (3..=32).contains(&raw.chars().count())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        prop_assert_eq!(Username::parse(&raw).is_ok(), username_rule);

        let password_rule = raw.chars().count() >= 8 && raw.len() <= 72;
        prop_assert_eq!(Password::parse("password", &raw).is_ok(), password_rule);

        let id_rule = (1..=100).contains(&raw.chars().count())
            && !raw.chars().any(|c| c.is_control());
        prop_assert_eq!(ClientMessageId::parse(&raw).is_ok(), id_rule);

        // Content and names may refuse more than their length (control characters, say); a
        // length out of bounds is always refused, and what is accepted is the trimmed text.
        let chars = trimmed_chars(&raw);
        if let Ok(content) = MessageContent::parse(&raw) {
            prop_assert!((1..=4000).contains(&chars));
            prop_assert_eq!(content.as_str(), raw.trim());
            prop_assert_eq!(MessageContent::parse(content.as_str()), Ok(content.clone()));
        }
        if let Ok(name) = ConversationName::parse(&raw) {
            prop_assert!((1..=100).contains(&chars));
            prop_assert_eq!(name.as_str(), raw.trim());
            prop_assert_eq!(ConversationName::parse(name.as_str()), Ok(name.clone()));
        }
        if let Ok(email) = Email::parse(&raw) {
            prop_assert_eq!(email.as_str(), raw.trim());
            prop_assert!(email.as_str().len() <= 254);
            let (local, domain) = email.as_str().split_once('@').unwrap();
            prop_assert!(!local.is_empty() && local.len() <= 64);
            prop_assert!(!domain.contains('@') && domain.contains('.'));
        }
    }
}
