//! [`PasswordHasher`] with bcrypt.

use chat_domain::ports::PasswordHasher;
use chat_domain::user::{Password, PasswordHash};

/// bcrypt at a configurable cost. Each step of cost doubles the work: 12 takes about 0.2 s
/// of one core, which is the point (it slows offline guessing just as much).
#[derive(Debug, Clone, Copy)]
pub struct BcryptHasher {
    cost: u32,
}

impl BcryptHasher {
    pub const DEFAULT_COST: u32 = 12;

    /// `cost` must be within bcrypt's 4..=31.
    pub fn new(cost: u32) -> Result<Self, String> {
        if (4..=31).contains(&cost) {
            Ok(Self { cost })
        } else {
            Err(format!("bcrypt cost must be between 4 and 31, got {cost}"))
        }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }
}

impl PasswordHasher for BcryptHasher {
    fn hash(&self, password: &Password) -> Result<PasswordHash, String> {
        // `Password` is at most 72 bytes, so bcrypt never truncates it.
        bcrypt::hash(password.expose(), self.cost)
            .map(PasswordHash)
            .map_err(|e| e.to_string())
    }

    fn verify(&self, password: &str, hash: &PasswordHash) -> bool {
        bcrypt::verify(password, &hash.0).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = BcryptHasher::new(4).unwrap();
        let password = Password::parse("password", "correct horse").unwrap();
        let hash = hasher.hash(&password).unwrap();
        assert!(hash.0.starts_with("$2b$04$"));
        assert!(hasher.verify("correct horse", &hash));
        assert!(!hasher.verify("correct horsE", &hash));
    }

    #[test]
    fn a_malformed_hash_is_a_mismatch() {
        let hasher = BcryptHasher::new(4).unwrap();
        assert!(!hasher.verify("x", &PasswordHash("not a hash".into())));
        assert!(!hasher.verify("x", &PasswordHash(String::new())));
    }

    #[test]
    fn costs_outside_bcrypts_range_are_refused() {
        assert!(BcryptHasher::new(3).is_err());
        assert!(BcryptHasher::new(32).is_err());
    }
}
