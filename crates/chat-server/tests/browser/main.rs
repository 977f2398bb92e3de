//! Browser tests: the web client served at `/`, driven in headless Chromium through
//! chromedriver (WebDriver, with `fantoccini`), as two people in two browser sessions.
//!
//! Each test starts its own server (a fresh SQLite file), its own `chromedriver` and two
//! browser sessions, which are two isolated profiles: two users signed up through the UI.
//! They need Debian's `chromium` and `chromium-driver` packages and run only when
//! `CHAT_TEST_BROWSER=1`; without it each test prints `SKIPPED: browser tests: ...` and
//! returns. With it set and `chromedriver` missing, they fail. `.ci/run` installs both
//! packages and sets the variable:
//! `CHAT_TEST_BROWSER=1 cargo test -p chat-server --test browser`.
//!
//! With `CHAT_SCREENSHOTS_DIR` set they also save PNGs of the main screens there (the README's
//! screenshots in `docs/screenshots/` come from them).

mod harness;
mod proxy;

mod features;
mod live;
mod offline;

// The server set-up of the API tests (configuration, random port, temporary database) is
// reused as it is; the browser tests use only a part of it.
#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../support/ws.rs"]
mod ws;
