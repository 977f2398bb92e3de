//! Creating the users a scenario needs: one sign-up and one login each, a few at a time.
//!
//! Both cost the server a bcrypt hash, so this is the slow part of setting up a large
//! scenario. Names are `{prefix}{index}`; a name that is already taken is logged in and
//! reused, so runs against the same server with the same `--user-prefix` only pay the login.

use futures_util::{StreamExt, stream};

use crate::BenchError;
use crate::client::{Target, User};

/// Signs up and logs in users `{prefix}0` .. `{prefix}{count-1}`, `concurrency` at a time,
/// user `i` on `targets[i % targets.len()]`.
pub async fn create_users(
    targets: &[Target],
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Result<Vec<User>, BenchError> {
    let longest = format!("{prefix}{}", count.saturating_sub(1));
    if prefix.len() < 2 || longest.len() > 32 {
        return Err(BenchError::Invalid(format!(
            "user names {prefix}0..{longest} must be 3-32 characters: use a --user-prefix of 2-26"
        )));
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(BenchError::Invalid(
            "--user-prefix may contain only letters, digits, '_', '.' and '-'".into(),
        ));
    }
    let started = std::time::Instant::now();
    let users: Vec<User> = stream::iter(0..count)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let target = &targets[i % targets.len()];
            async move { target.signup_and_login(&name).await }
        })
        .buffered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    if count >= 50 {
        eprintln!(
            "chat-bench: {count} users ready in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(users)
}

/// A short random tag, so that names and client message ids of one run never collide with
/// another's on the same server.
pub fn run_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
