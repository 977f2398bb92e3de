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

    /// Runs `work` once a slot is free; the wait for it is reported as
    /// `chatd_password_hash_queue_wait_seconds`.
    fn with_slot<T>(&self, work: impl FnOnce(&H) -> T) -> T {
        let queued = std::time::Instant::now();
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
        metrics::histogram!("chatd_password_hash_queue_wait_seconds")
            .record(queued.elapsed().as_secs_f64());
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

    /// A hasher whose calls each wait, inside, until the test lets one of them go, and which
    /// counts the calls that have come in and gone out.
    struct Gate {
        state: Mutex<GateState>,
        changed: Condvar,
    }

    #[derive(Default)]
    struct GateState {
        entered: usize,
        left: usize,
        let_go: usize,
        most_inside: usize,
    }

    /// Far longer than any wait here should take; reaching it means the awaited event will
    /// not come.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    impl Gate {
        fn new() -> Self {
            Self {
                state: Mutex::default(),
                changed: Condvar::new(),
            }
        }

        /// Waits until `done` holds.
        fn wait_until(&self, what: &str, done: impl Fn(&GateState) -> bool) {
            let state = self.state.lock().unwrap();
            let (state, timeout) = self
                .changed
                .wait_timeout_while(state, PATIENCE, |s| !done(s))
                .unwrap();
            drop(state);
            assert!(!timeout.timed_out(), "still waiting for {what}");
        }

        fn read<T>(&self, read: impl Fn(&GateState) -> T) -> T {
            read(&self.state.lock().unwrap())
        }

        fn let_one_go(&self) {
            self.state.lock().unwrap().let_go += 1;
            self.changed.notify_all();
        }
    }

    impl PasswordHasher for Gate {
        fn hash(&self, _: &Password) -> Result<PasswordHash, String> {
            unreachable!()
        }
        fn verify(&self, _: &str, _: &PasswordHash) -> bool {
            let mut state = self.state.lock().unwrap();
            state.entered += 1;
            state.most_inside = state.most_inside.max(state.entered - state.left);
            self.changed.notify_all();
            // No time limit here: the test's own waits give up if this never ends.
            let mut state = self
                .changed
                .wait_while(state, |s| s.let_go == s.left)
                .unwrap();
            state.left += 1;
            self.changed.notify_all();
            true
        }
    }

    #[test]
    fn hashes_up_to_the_limit_run_together_and_the_rest_wait_their_turn() {
        use std::sync::Arc;

        const CALLS: usize = 8;
        const LIMIT: usize = 2;
        let hasher = Arc::new(BoundedHasher::new(Gate::new(), LIMIT));
        let gate = || &hasher.inner;
        let threads: Vec<_> = (0..CALLS)
            .map(|_| {
                let hasher = hasher.clone();
                std::thread::spawn(move || hasher.verify("x", &PasswordHash(String::new())))
            })
            .collect();

        // Two calls are inside at once: the bound does not serialise them.
        gate().wait_until("two calls inside", |s| s.entered >= LIMIT);
        // Each call let go makes room for exactly one more, never for two.
        for released in 1..=CALLS {
            let entered = gate().read(|s| s.entered);
            assert_eq!(
                entered,
                (released - 1 + LIMIT).min(CALLS),
                "after {} let go",
                released - 1
            );
            gate().let_one_go();
            gate().wait_until("the call let go to leave", |s| s.left == released);
            let expected = (released + LIMIT).min(CALLS);
            gate().wait_until("the next call to enter", |s| s.entered >= expected);
        }
        for thread in threads {
            assert!(thread.join().unwrap());
        }
        let most = gate().read(|s| s.most_inside);
        assert_eq!(most, LIMIT, "calls inside at once");
    }
}
