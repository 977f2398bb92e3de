//! [`PasswordHasher`] with bcrypt.

use std::sync::{Condvar, Mutex, PoisonError};

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

/// Lets at most `limit` hashes run at once; the rest wait their turn. bcrypt is pure CPU, so
/// a login flood with unbounded hashing would take every core from everything else; with the
/// bound (the number of cores, say) logins queue while other requests keep being served.
pub struct BoundedHasher<H> {
    inner: H,
    limit: usize,
    running: Mutex<usize>,
    freed: Condvar,
}

impl<H> BoundedHasher<H> {
    pub fn new(inner: H, limit: usize) -> Self {
        Self {
            inner,
            limit: limit.max(1),
            running: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    fn with_slot<T>(&self, work: impl FnOnce(&H) -> T) -> T {
        {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            while *running >= self.limit {
                running = self
                    .freed
                    .wait(running)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            *running += 1;
        }
        let result = work(&self.inner);
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) -= 1;
        self.freed.notify_one();
        result
    }
}

impl<H: PasswordHasher> PasswordHasher for BoundedHasher<H> {
    fn hash(&self, password: &Password) -> Result<PasswordHash, String> {
        self.with_slot(|inner| inner.hash(password))
    }

    fn verify(&self, password: &str, hash: &PasswordHash) -> bool {
        self.with_slot(|inner| inner.verify(password, hash))
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

    #[test]
    fn no_more_than_the_limit_of_hashes_run_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// Records how many calls overlap.
        struct Probe {
            now: AtomicUsize,
            most: AtomicUsize,
        }
        impl PasswordHasher for Probe {
            fn hash(&self, _: &Password) -> Result<PasswordHash, String> {
                unreachable!()
            }
            fn verify(&self, _: &str, _: &PasswordHash) -> bool {
                let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                self.now.fetch_sub(1, Ordering::SeqCst);
                true
            }
        }
        let probe = Probe {
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        };
        let hasher = Arc::new(BoundedHasher::new(probe, 2));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let hasher = hasher.clone();
                std::thread::spawn(move || hasher.verify("x", &PasswordHash(String::new())))
            })
            .collect();
        for thread in threads {
            assert!(thread.join().unwrap());
        }
        assert_eq!(hasher.inner.most.load(Ordering::SeqCst), 2);
    }
}
