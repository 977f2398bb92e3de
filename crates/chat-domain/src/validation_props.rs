//! Property tests: every parser accepts exactly what its rule says, for any input, and never
//! panics.

use proptest::prelude::*;

use crate::conversation::ConversationName;
use crate::message::{ClientMessageId, MessageContent};
use crate::user::{Email, Password, Username};

proptest! {
    #[test]
    fn usernames_are_accepted_exactly_when_the_rule_holds(raw in "\\PC{0,40}") {
        let len = raw.chars().count();
        let rule = (3..=32).contains(&len)
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        prop_assert_eq!(Username::parse(&raw).is_ok(), rule);
    }

    #[test]
    fn well_shaped_usernames_round_trip(raw in "[A-Za-z0-9_.-]{3,32}") {
        let parsed = Username::parse(&raw).unwrap();
        prop_assert_eq!(parsed.as_str(), raw.as_str());
    }

    #[test]
    fn passwords_are_accepted_exactly_from_8_characters_to_72_bytes(raw in "\\PC{0,80}") {
        let rule = raw.chars().count() >= 8 && raw.len() <= 72;
        prop_assert_eq!(Password::parse("password", &raw).is_ok(), rule);
    }

    #[test]
    fn message_content_is_the_trimmed_text_when_1_to_4000_characters(raw in "\\s{0,3}\\PC{0,50}\\s{0,3}") {
        let trimmed = raw.trim();
        match MessageContent::parse(&raw) {
            Ok(content) => {
                prop_assert_eq!(content.as_str(), trimmed);
                prop_assert!(!trimmed.is_empty());
            }
            Err(_) => prop_assert!(trimmed.is_empty()),
        }
    }

    #[test]
    fn no_parser_panics_on_any_input(raw in any::<String>()) {
        let _ = Username::parse(&raw);
        let _ = Email::parse(&raw);
        let _ = Password::parse("password", &raw);
        let _ = MessageContent::parse(&raw);
        let _ = ConversationName::parse(&raw);
        let _ = ClientMessageId::parse(&raw);
    }

    #[test]
    fn accepted_emails_have_one_at_and_a_dotted_domain(raw in "[a-z@.\\-]{0,20}") {
        if let Ok(email) = Email::parse(&raw) {
            let (local, domain) = email.as_str().split_once('@').unwrap();
            prop_assert!(!local.is_empty() && !domain.contains('@') && domain.contains('.'));
        }
    }
}
