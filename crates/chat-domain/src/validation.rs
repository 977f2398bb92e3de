//! Field-level validation failures, collected so a client learns about every bad field at once.

use std::fmt;

/// One field that failed to parse into its domain type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Collects field errors while a request is parsed field by field.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value when it parsed, records the error otherwise.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error);
                None
            }
        }
    }

    /// Fails with every recorded error, or succeeds when there were none.
    pub fn finish(self) -> Result<(), crate::DomainError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(crate::DomainError::Validation(self.errors))
        }
    }
}

/// Whether `c` may appear in free text that spans lines (message content): any character but
/// the control characters (C0, DEL and C1), of which newline and tab are let through. A NUL
/// or an escape sequence has no business in a chat message: the first cuts strings short in
/// C-based clients, the second rewrites a terminal that prints it.
pub fn allowed_in_text(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t')
}

/// Whether `c` may appear in a name shown on one line (a full name, a group's name): no
/// control character at all, newline and tab included, and none of the characters that
/// change the direction of the text around them. A right-to-left override in a name makes
/// what follows it, in every list the name appears in, read backwards: a tool for
/// impersonation, never needed to write a name in any script.
pub fn allowed_in_line(c: char) -> bool {
    !c.is_control() && !is_bidi_control(c)
}

/// The explicit text-direction marks, embeddings, overrides and isolates (Unicode's
/// `Bidi_Control` property).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_newlines_and_tabs_and_refuses_every_other_control_character() {
        assert!(allowed_in_text('\n') && allowed_in_text('\t'));
        assert!(allowed_in_text('é') && allowed_in_text('\u{202E}'));
        for c in ['\0', '\u{1b}', '\r', '\u{7}', '\u{7f}', '\u{85}', '\u{9b}'] {
            assert!(!allowed_in_text(c), "{c:?} should be refused");
        }
    }

    #[test]
    fn a_line_refuses_line_breaks_and_text_direction_controls() {
        assert!(allowed_in_line('a') && allowed_in_line('ש') && allowed_in_line(' '));
        for c in [
            '\n', '\t', '\0', '\u{1b}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2066}',
            '\u{2069}', '\u{061C}',
        ] {
            assert!(!allowed_in_line(c), "{c:?} should be refused");
        }
    }
}
