//! User accounts and the values that make them up, each parsed once and valid by construction.

use chrono::{DateTime, Utc};

use crate::UserId;
use crate::validation::{FieldError, allowed_in_line};

/// A user as the rest of the system sees it. The password hash is deliberately not here: it
/// only travels between the store and the hasher, so no view of a user can leak it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    pub is_active: bool,
    /// Tokens carry the generation they were issued under; raising it (password change,
    /// deactivation) invalidates every earlier token of the user at once.
    pub token_generation: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user as anyone else sees them: the profile without the email address, which only its
/// owner sees (the owner's own view is [`User`]), and without `updated_at`, which would tell
/// others when the password or email last changed. Every answer about another user is built
/// from this type, so an email cannot reach a stranger by an edge forgetting to drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicProfile {
    pub id: UserId,
    pub username: Username,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    /// A deactivated user stays visible (their name on past messages), marked as such.
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<User> for PublicProfile {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            full_name: user.full_name,
            avatar_url: user.avatar_url,
            bio: user.bio,
            is_active: user.is_active,
            created_at: user.created_at,
        }
    }
}

/// A login name: 3–32 ASCII letters, digits, `_`, `.` or `-`. Uniqueness ignores case, but
/// the spelling the user chose is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(FieldError::new(
                "username",
                format!(
                    "must be {}-{} characters long",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(FieldError::new(
                "username",
                "may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address in the usual `local@domain.tld` shape, stored as given but compared
/// without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        let invalid = || FieldError::new("email", "must be a valid email address");
        if raw.len() > Self::MAX_LEN || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = raw.split_once('@').ok_or_else(invalid)?;
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || !domain.contains('.')
            || !labels_ok
        {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password in clear text, only ever held long enough to hash or check it. At least
/// 8 characters, and at most 72 bytes because bcrypt ignores anything beyond: a longer
/// password is refused rather than silently truncated.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(FieldError::new(
                field,
                format!("must be at least {} characters long", Self::MIN_CHARS),
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(FieldError::new(
                field,
                format!("must be at most {} bytes long", Self::MAX_BYTES),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A password hash in the hasher's own encoding (bcrypt's `$2b$...` string today).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// Parses an optional free-text profile field: trimmed, empty means "none", bounded length.
pub fn optional_text(
    field: &'static str,
    raw: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max_chars {
        return Err(FieldError::new(
            field,
            format!("must be at most {max_chars} characters long"),
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// Parses an optional name shown on one line (a full name): as [`optional_text`], and without
/// line breaks, tabs or text-direction characters (see [`allowed_in_line`]).
pub fn optional_line(
    field: &'static str,
    raw: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    let value = optional_text(field, raw, max_chars)?;
    if value
        .as_deref()
        .is_some_and(|value| !value.chars().all(allowed_in_line))
    {
        return Err(FieldError::new(
            field,
            "must be one line without control or text-direction characters",
        ));
    }
    Ok(value)
}

/// Parses an optional avatar URL: absolute `http` or `https`, at most 2048 characters.
pub fn optional_url(field: &'static str, raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(value) = optional_text(field, raw, 2048)? else {
        return Ok(None);
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !value.chars().any(char::is_whitespace) => {
            Ok(Some(value))
        }
        _ => Err(FieldError::new(field, "must be an absolute http(s) URL")),
    }
}

pub const FULL_NAME_MAX: usize = 100;
pub const BIO_MAX: usize = 500;

/// A new account, parsed and ready to store.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub full_name: Option<String>,
    pub password_hash: PasswordHash,
    pub created_at: DateTime<Utc>,
}

/// A profile change: `None` leaves a field as it is; `Some(None)` clears an optional field.
/// A new password hash also raises the user's token generation, revoking earlier tokens.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub email: Option<Email>,
    pub full_name: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub password_hash: Option<PasswordHash>,
}

/// A search over users: a case-insensitive substring of the username or full name, or a
/// whole email address (ignoring case). An email is never matched by a part of it, so the
/// search finds a contact whose address one already knows and cannot harvest addresses.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub text: Option<String>,
    pub page: crate::paging::Page,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_accept_letters_digits_and_three_punctuation_marks() {
        assert!(Username::parse("alice_01.b-c").is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("alice!").is_err());
        assert!(Username::parse("ålice").is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        assert!(Email::parse("a.b+tag@sub.example.org").is_ok());
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a@b..c", "a b@c.d", "a@-b.c", "a@@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn passwords_longer_than_bcrypt_accepts_are_refused_not_truncated() {
        assert!(Password::parse("password", "1234567").is_err());
        assert!(Password::parse("password", "12345678").is_ok());
        assert!(Password::parse("password", &"x".repeat(72)).is_ok());
        assert!(Password::parse("password", &"x".repeat(73)).is_err());
        // 8 characters but 4 bytes each: 32 bytes, accepted; 19 of them are 76 bytes, refused.
        assert!(Password::parse("password", &"😀".repeat(8)).is_ok());
        assert!(Password::parse("password", &"😀".repeat(19)).is_err());
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let password = Password::parse("password", "hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn full_names_are_one_line_without_text_direction_controls() {
        for bad in [
            "Ann\nAdmin",
            "Ann\tB",
            "Ann\u{0}",
            "\u{1b}[31mAnn",
            "Ann \u{202E}nimda",
            "\u{200F}Ann",
            "\u{2067}Ann",
        ] {
            let error = optional_line("full_name", Some(bad), FULL_NAME_MAX).unwrap_err();
            assert_eq!(error.field, "full_name", "{bad:?}");
        }
        assert_eq!(
            optional_line("full_name", Some(" Zoë Åström-שלום "), FULL_NAME_MAX).unwrap(),
            Some("Zoë Åström-שלום".into())
        );
        assert_eq!(
            optional_line("full_name", Some(" "), FULL_NAME_MAX).unwrap(),
            None
        );
    }

    #[test]
    fn optional_text_trims_and_treats_blank_as_none() {
        assert_eq!(
            optional_text("bio", Some("  hi  "), 10).unwrap(),
            Some("hi".into())
        );
        assert_eq!(optional_text("bio", Some("   "), 10).unwrap(), None);
        assert!(optional_text("bio", Some("12345678901"), 10).is_err());
        assert!(optional_url("avatar_url", Some("ftp://x")).is_err());
        assert!(optional_url("avatar_url", Some("https://cdn.example.com/a.png")).is_ok());
    }
}
