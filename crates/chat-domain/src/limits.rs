//! Abuse limits: how many of an action a user or a client address may take, and how fast
//! the budget comes back. The budgets themselves live behind the [`RateLimiter`] port, so
//! several nodes can share them.
//!
//! [`RateLimiter`]: crate::ports::RateLimiter

use std::time::Duration;

#[cfg(any(test, feature = "contract"))]
pub mod contract;

/// A budget of `burst` actions, refilled at one action per `period / burst` (a token
/// bucket). `Quota::new(10, 15 min)` allows 10 at once, then one more every 90 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub burst: u32,
    pub period: Duration,
}

impl Quota {
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }

    /// `rate` actions a second with room for `burst` at once.
    pub fn per_second(rate: u32, burst: u32) -> Self {
        let rate = rate.max(1);
        Self {
            burst: burst.max(1),
            period: Duration::from_secs(u64::from(burst.max(1))) / rate,
        }
    }

    /// The time one action takes to come back.
    pub fn refill_interval(&self) -> Duration {
        self.period / self.burst.max(1)
    }
}

/// Which limits apply; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed logins per account: after these, login attempts for the account are refused
    /// (without checking the password) until the budget refills.
    pub login_failures_per_account: Option<Quota>,
    /// A second, longer window per account, so steady guessing at the refill rate still
    /// stops at a hard hourly ceiling.
    pub login_failures_per_account_hourly: Option<Quota>,
    /// Failed logins per client address, across accounts.
    pub login_failures_per_address: Option<Quota>,
    /// Failed logins per device token. A client presenting a valid device token for the
    /// account is counted against this budget alone, not the account's or its address's,
    /// so failures by others never lock it out; past it, that device is refused too.
    pub login_failures_per_device: Option<Quota>,
    pub signups_per_address: Option<Quota>,
    pub messages_per_user: Option<Quota>,
    pub typing_per_user: Option<Quota>,
    /// Conversations a user creates plus member additions they make: each pulls others in,
    /// so one user cannot drag another into a hundred groups in a second.
    pub conversations_per_user: Option<Quota>,
    /// The most distinct emoji one message may carry: a product rule rather than an abuse
    /// limit, so [`Limits::none`] keeps it.
    pub max_reactions_per_message: usize,
    /// The most messages one conversation may have pinned at once; kept by [`Limits::none`].
    pub max_pins_per_conversation: usize,
    /// Reports a user files (of messages or users) for the server admins.
    pub reports_per_user: Option<Quota>,
}

impl Default for Limits {
    /// The defaults a public server runs with.
    fn default() -> Self {
        const MINUTE: Duration = Duration::from_secs(60);
        Self {
            login_failures_per_account: Some(Quota::new(10, 15 * MINUTE)),
            login_failures_per_account_hourly: Some(Quota::new(100, 60 * MINUTE)),
            login_failures_per_address: Some(Quota::new(10, 15 * MINUTE)),
            login_failures_per_device: Some(Quota::new(5, 15 * MINUTE)),
            signups_per_address: Some(Quota::new(10, 60 * MINUTE)),
            messages_per_user: Some(Quota::per_second(20, 40)),
            typing_per_user: Some(Quota::per_second(5, 10)),
            conversations_per_user: Some(Quota::new(Self::CONVERSATIONS_PER_MINUTE, MINUTE)),
            max_reactions_per_message: Self::MAX_REACTIONS_PER_MESSAGE,
            max_pins_per_conversation: Self::MAX_PINS_PER_CONVERSATION,
            reports_per_user: Some(Quota::new(Self::REPORTS_PER_HOUR, 60 * MINUTE)),
        }
    }
}

impl Limits {
    /// The default of [`Self::reports_per_user`]: reports per user and hour, all of which
    /// may come at once.
    pub const REPORTS_PER_HOUR: u32 = 20;
    /// The default of [`Self::conversations_per_user`]: conversations created plus member
    /// additions per user and minute, all of which may come at once.
    pub const CONVERSATIONS_PER_MINUTE: u32 = 20;
    /// The default of [`Self::max_reactions_per_message`].
    pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;
    /// The default of [`Self::max_pins_per_conversation`].
    pub const MAX_PINS_PER_CONVERSATION: usize = 50;

    /// Every limit off, for benchmarks and tests of other behaviour.
    pub const fn none() -> Self {
        Self {
            login_failures_per_account: None,
            login_failures_per_account_hourly: None,
            login_failures_per_address: None,
            login_failures_per_device: None,
            signups_per_address: None,
            messages_per_user: None,
            typing_per_user: None,
            conversations_per_user: None,
            max_reactions_per_message: Self::MAX_REACTIONS_PER_MESSAGE,
            max_pins_per_conversation: Self::MAX_PINS_PER_CONVERSATION,
            reports_per_user: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_quotas_refill_at_the_rate() {
        let quota = Quota::per_second(20, 40);
        assert_eq!(quota.refill_interval(), Duration::from_millis(50));
        assert_eq!(
            Quota::new(10, Duration::from_secs(900)).refill_interval(),
            Duration::from_secs(90)
        );
    }
}
