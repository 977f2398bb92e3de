//! The [`RateLimiter`] port's rules, written once and run against every implementation
//! (the in-memory one in chat-http, the PostgreSQL one in chat-postgres), so that budgets
//! behave the same on one node and across a cluster. An adapter's tests expand
//! [`rate_limiter_contract_tests!`](crate::rate_limiter_contract_tests) once.
//!
//! The rules wait for real time to pass (a budget refills on the limiter's own clock, which
//! for a shared limiter is the database's), so quotas here are short.

use std::time::Duration;

use super::Quota;
use crate::ports::RateLimiter;

/// A unique key per test run, so tests sharing a store never share a budget.
fn key(name: &str) -> String {
    format!("{name}:{}", uuid::Uuid::new_v4().simple())
}

/// `burst` actions pass at once, the next is refused with the time until one comes back,
/// and after that time one more passes. Other keys are untouched.
pub fn a_burst_is_allowed_then_refused_until_the_budget_refills(limiter: &dyn RateLimiter) {
    let quota = Quota::new(3, Duration::from_millis(300));
    let k = key("burst");
    for n in 0..3 {
        assert_eq!(
            limiter.acquire(&k, quota),
            Ok(()),
            "action {n} of the burst"
        );
    }
    let wait = limiter.acquire(&k, quota).unwrap_err();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(100),
        "{wait:?}"
    );
    assert_eq!(limiter.acquire(&key("other"), quota), Ok(()));
    std::thread::sleep(wait + Duration::from_millis(5));
    assert_eq!(limiter.acquire(&k, quota), Ok(()));
}

/// `check` answers like `acquire` would, and never takes from the budget.
pub fn checking_never_spends_the_budget(limiter: &dyn RateLimiter) {
    let quota = Quota::new(1, Duration::from_secs(60));
    let k = key("check");
    for _ in 0..5 {
        assert_eq!(limiter.check(&k, quota), Ok(()));
    }
    assert_eq!(limiter.acquire(&k, quota), Ok(()));
    let wait = limiter.check(&k, quota).unwrap_err();
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
}

/// A refused action takes nothing: however often a client is refused, the budget comes
/// back at the quota's rate, one action per refill interval.
pub fn refusals_do_not_push_the_budget_further_away(limiter: &dyn RateLimiter) {
    let quota = Quota::new(1, Duration::from_millis(200));
    let k = key("refused");
    assert_eq!(limiter.acquire(&k, quota), Ok(()));
    let first = limiter.acquire(&k, quota).unwrap_err();
    for _ in 0..20 {
        let again = limiter.acquire(&k, quota).unwrap_err();
        assert!(again <= first, "{again:?} after {first:?}");
    }
    std::thread::sleep(first + Duration::from_millis(5));
    assert_eq!(limiter.acquire(&k, quota), Ok(()));
    assert!(limiter.acquire(&k, quota).is_err(), "one action came back");
}

/// A budget refills at the quota's rate, not all at once: after half the period, half the
/// burst is back.
pub fn a_spent_budget_comes_back_one_action_per_refill_interval(limiter: &dyn RateLimiter) {
    let quota = Quota::new(4, Duration::from_millis(800));
    let k = key("refill");
    for _ in 0..4 {
        assert_eq!(limiter.acquire(&k, quota), Ok(()));
    }
    assert!(limiter.acquire(&k, quota).is_err());
    std::thread::sleep(Duration::from_millis(420));
    assert_eq!(limiter.acquire(&k, quota), Ok(()));
    assert_eq!(limiter.acquire(&k, quota), Ok(()));
    assert!(limiter.acquire(&k, quota).is_err(), "only two came back");
}

/// Threads taking from one budget at once get exactly `burst` actions between them.
pub fn concurrent_takers_share_one_budget_exactly(limiter: &dyn RateLimiter) {
    let quota = Quota::new(10, Duration::from_secs(600));
    let k = key("concurrent");
    let granted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10 {
                    if limiter.acquire(&k, quota).is_ok() {
                        granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(granted.into_inner(), 10);
}

/// Expands to one `#[test]` per rule of the [`RateLimiter`] port. `$make` is an expression
/// giving `Option<L>` where `L` derefs to a limiter (a guard that also owns what the limiter
/// needs, such as a test database); `None` skips the rule, for a database that is absent
/// (the guard's constructor says so loudly).
#[macro_export]
macro_rules! rate_limiter_contract_tests {
    ($make:expr) => {
        $crate::rate_limiter_contract_tests!(@rules $make;
            a_burst_is_allowed_then_refused_until_the_budget_refills,
            checking_never_spends_the_budget,
            refusals_do_not_push_the_budget_further_away,
            a_spent_budget_comes_back_one_action_per_refill_interval,
            concurrent_takers_share_one_budget_exactly
        );
    };
    (@rules $make:expr; $($rule:ident),*) => {
        $(
            #[test]
            fn $rule() {
                let Some(limiter) = $make else { return };
                $crate::limits::contract::$rule(&*limiter);
            }
        )*
    };
}
