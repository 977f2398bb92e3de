//! The set-up every browser test shares: a chromedriver process, a server, two browser
//! sessions, and the steps a person takes in the web client (sign up, start a conversation,
//! send), written against the client's selector contract.

use std::fmt::Display;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with, test_config};

/// How long a step may take before the test gives up on it. Generous: a loaded two-core
/// machine runs two Chromiums and a server; nothing is asserted about speed.
pub const PATIENCE: Duration = Duration::from_secs(45);

/// The password every browser user signs up with.
pub const PASSWORD: &str = "correct horse battery";

/// One browser test at a time: each already runs two Chromiums, and on a small machine more
/// of them only make each other slow.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Polls `probe` until it answers `Ok`, and panics with `what` and the last `Err` (what was
/// seen instead) once [`PATIENCE`] has passed.
pub async fn eventually<T, F, Fut>(what: impl Display, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("waited {PATIENCE:?} for {what}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A `chromedriver` started on a free port (`--port=0`, the port it chose read from its
/// output); it is killed, with the browsers it started, when dropped.
pub struct ChromeDriver {
    child: Child,
    pub url: String,
}

impl ChromeDriver {
    /// Starts `chromedriver` from PATH, or panics saying how to install it.
    fn start() -> Self {
        let mut command = Command::new("chromedriver");
        command
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Its own process group, so that the browsers it starts are killed with it even when
        // a test fails before closing its sessions.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "CHAT_TEST_BROWSER=1 but chromedriver does not start ({e}): install Debian's \
                 `chromium` and `chromium-driver` packages (.ci/run does)"
            )
        });
        let mut stdout = child.stdout.take().expect("chromedriver's output is piped");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Reads the "started successfully on port N." line, then keeps draining the pipe so
        // that chromedriver never blocks on it.
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut buffer = [0u8; 1024];
            let mut port_tx = Some(port_tx);
            while let Ok(read @ 1..) = stdout.read(&mut buffer) {
                if let Some(tx) = &port_tx {
                    seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
                    if let Some(port) = announced_port(&seen) {
                        let _ = tx.send(port);
                        port_tx = None;
                    }
                }
            }
        });
        let port = port_rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("chromedriver did not say which port it listens on")
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// The port in chromedriver's "ChromeDriver was started successfully on port N." line.
fn announced_port(output: &str) -> Option<u16> {
    let rest = output.split("started successfully on port ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with('.')
        .then(|| digits.parse().ok())?
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium process it started.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser tests run; prints why not when they do not.
fn enabled() -> bool {
    if std::env::var("CHAT_TEST_BROWSER").as_deref() == Ok("1") {
        return true;
    }
    // Straight to the process's stderr, past the test harness's capture, so that a plain
    // `cargo test` shows what it did not run.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: browser tests: set CHAT_TEST_BROWSER=1 (needs Debian's chromium and \
         chromium-driver) to run them"
    );
    false
}

/// A server and two people, Alice and Bob, each in a browser session of their own.
pub struct Scene {
    pub alice: Browser,
    pub bob: Browser,
    pub server: TestApp,
    /// Dropped after the browsers: killing it takes any browser left behind with it.
    driver: ChromeDriver,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

impl Scene {
    /// Starts the server, chromedriver and two browsers at the web client's page, or prints
    /// why not and returns `None` when `CHAT_TEST_BROWSER` is not `1`.
    pub async fn start() -> Option<Self> {
        if !enabled() {
            return None;
        }
        let one_at_a_time = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = test_config(&dir);
        // What a person sees: presence changes as they happen, delivered ticks soon.
        config.presence_events = true;
        config.presence_window = Duration::ZERO;
        config.presence_offline_after = Duration::ZERO;
        config.delivery_flush_interval = Duration::from_millis(100);
        let server = spawn_app_with(config, dir).await;
        let driver = tokio::task::spawn_blocking(ChromeDriver::start)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let profiles = server.dir.path();
        let (alice, bob) = tokio::join!(
            Browser::open(&driver, &server.address, "alice", profiles),
            Browser::open(&driver, &server.address, "bob", profiles),
        );
        Some(Self {
            alice,
            bob,
            server,
            driver,
            _one_at_a_time: one_at_a_time,
        })
    }

    /// Both users signed up through the UI, and a direct conversation Alice started with
    /// Bob, open in Alice's browser; its id.
    pub async fn signed_up_and_talking(&self) -> String {
        tokio::join!(self.alice.sign_up(), self.bob.sign_up());
        self.alice.start_conversation(&self.bob.name).await
    }

    /// Closes the browser sessions and stops the server.
    pub async fn finish(self) {
        let Self {
            alice,
            bob,
            server,
            driver,
            _one_at_a_time,
        } = self;
        let _ = tokio::join!(alice.client.close(), bob.client.close());
        server.shutdown.stop().await;
        drop(driver);
    }
}

/// One person's browser session (an isolated profile) at the web client.
pub struct Browser {
    pub client: Client,
    /// The username this person signs up with.
    pub name: String,
    /// The web client's address (the server's, or a proxy's in front of it).
    pub base: String,
}

impl Browser {
    /// Opens a headless Chromium session with a profile of its own under `profiles`, at
    /// `base`.
    pub async fn open(driver: &ChromeDriver, base: &str, name: &str, profiles: &Path) -> Self {
        let profile = profiles.join(format!("profile-{name}"));
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        // Pictures look the same on every machine.
        args.push("--force-device-scale-factor=1".to_owned());
        let mut options = json!({ "args": args });
        // Debian's chromedriver finds Debian's chromium by itself; a CHROME_BIN points
        // elsewhere.
        if let Ok(binary) = std::env::var("CHROME_BIN") {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver opens a Chromium session: {e}"));
        let browser = Self {
            client,
            name: name.to_owned(),
            base: base.to_owned(),
        };
        browser.goto("/").await;
        browser
    }

    /// Loads `path` of the web client.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("{} loads {path}: {e}", self.name));
    }

    /// Reloads the page.
    pub async fn reload(&self) {
        self.client
            .refresh()
            .await
            .unwrap_or_else(|e| panic!("{} reloads: {e}", self.name));
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.client
            .execute(script, args)
            .await
            .map_err(|e| format!("script failed: {e}"))
    }

    /// Whether the first element matching `css` is rendered (in the DOM, not hidden).
    pub async fn is_shown(&self, css: &str) -> bool {
        self.js(
            "const e = document.querySelector(arguments[0]); \
             return !!e && e.checkVisibility();",
            vec![json!(css)],
        )
        .await
        .is_ok_and(|shown| shown == json!(true))
    }

    /// Waits until an element matching `css` is shown, and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        eventually(format_args!("{} to show {css}", self.name), || async {
            let found = self.client.find(Locator::Css(css)).await;
            let element = found.map_err(|_| "no such element".to_owned())?;
            match element.is_displayed().await {
                Ok(true) => Ok(element),
                _ => Err("present but not displayed".to_owned()),
            }
        })
        .await
    }

    /// Waits until nothing matching `css` is shown.
    pub async fn wait_for_gone(&self, css: &str) {
        eventually(
            format_args!("{} to stop showing {css}", self.name),
            || async {
                if self.is_shown(css).await {
                    Err("still shown".to_owned())
                } else {
                    Ok(())
                }
            },
        )
        .await
    }

    /// The text of the first element matching `css` ("" when there is none).
    pub async fn text_of(&self, css: &str) -> String {
        let text = self
            .js(
                "const e = document.querySelector(arguments[0]); \
                 return e ? e.textContent : '';",
                vec![json!(css)],
            )
            .await;
        text.ok()
            .and_then(|t| t.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits until the text of the first element matching `css` satisfies `wanted`.
    pub async fn wait_for_text(&self, css: &str, what: &str, wanted: impl Fn(&str) -> bool) {
        eventually(format_args!("{}'s {css} to {what}", self.name), || async {
            let text = self.text_of(css).await;
            if wanted(&text) { Ok(()) } else { Err(text) }
        })
        .await
    }

    /// Clicks the element matching `css` once it is shown (found again if the page redrew
    /// it between finding and clicking).
    pub async fn click(&self, css: &str) {
        eventually(format_args!("{} to click {css}", self.name), || async {
            let element = self.wait_for(css).await;
            element.click().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Waits until `#presence` shows the other member of a direct conversation as `status`.
    pub async fn wait_for_presence(&self, status: &str) {
        eventually(
            format_args!("{} to show the other member {status}", self.name),
            || async {
                let seen = self
                    .js(
                        "const p = document.querySelector('#presence'); \
                         return p ? [p.dataset.status, p.checkVisibility(), p.textContent] : null;",
                        vec![],
                    )
                    .await?;
                if seen[0] == json!(status) && seen[1] == json!(true) {
                    Ok(())
                } else {
                    Err(seen.to_string())
                }
            },
        )
        .await;
    }

    /// Types `text` into the field matching `css`, after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("{} clears {css}: {e}", self.name));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{} types into {css}: {e}", self.name));
    }

    /// Signs up through the auth screen, which logs in; waits for the signed-in app.
    pub async fn sign_up(&self) {
        self.wait_for("#auth").await;
        self.fill("#auth [name=username]", &self.name).await;
        self.fill("#auth [name=email]", &format!("{}@example.com", self.name))
            .await;
        self.fill("#auth [name=password]", PASSWORD).await;
        self.click("#auth [data-action=signup]").await;
        self.wait_for_signed_in().await;
    }

    /// Logs in through the auth screen with `password`, without waiting for the outcome.
    pub async fn log_in_with(&self, password: &str) {
        self.wait_for("#auth").await;
        self.fill("#auth [name=username]", &self.name).await;
        self.fill("#auth [name=password]", password).await;
        self.click("#auth [data-action=login]").await;
    }

    /// Waits until the auth screen is gone and the inbox is shown.
    pub async fn wait_for_signed_in(&self) {
        eventually(format_args!("{} to be signed in", self.name), || async {
            if self.is_shown("#inbox").await && !self.is_shown("#auth").await {
                Ok(())
            } else {
                Err(format!(
                    "#auth-error: {:?}",
                    self.text_of("#auth-error").await
                ))
            }
        })
        .await;
    }

    /// Starts a direct (one name) or group conversation with `members` (comma separated)
    /// from the "new conversation" form; waits for it to open and returns its id.
    pub async fn start_conversation(&self, members: &str) -> String {
        self.click("[data-action=new-conversation]").await;
        self.fill("[name=members]", members).await;
        self.click("[data-action=create-conversation]").await;
        self.open_conversation_id().await
    }

    /// The id of the conversation shown, once one is.
    pub async fn open_conversation_id(&self) -> String {
        eventually(
            format_args!("{} to open a conversation", self.name),
            || async {
                self.open_conversation_id_now()
                    .await
                    .ok_or_else(|| "no open conversation".to_owned())
            },
        )
        .await
    }

    /// The id of the conversation shown now, if one is.
    pub async fn open_conversation_id_now(&self) -> Option<String> {
        let id = self
            .js(
                "const c = document.querySelector('#conversation'); \
                 return c && c.checkVisibility() ? c.dataset.conversationId || null : null;",
                vec![],
            )
            .await
            .ok()?;
        id.as_str().map(str::to_owned)
    }

    /// Opens conversation `id` from the inbox (it must appear there, live).
    pub async fn open_conversation(&self, id: &str) {
        self.click(&inbox_item(id)).await;
        eventually(format_args!("{} to open {id}", self.name), || async {
            let shown = self.open_conversation_id().await;
            if shown == id { Ok(()) } else { Err(shown) }
        })
        .await;
    }

    /// Types `text` into the composer without sending it.
    pub async fn type_draft(&self, text: &str) {
        self.fill("#composer textarea[name=content]", text).await;
    }

    /// Types `text` into the composer and presses Enter.
    pub async fn send(&self, text: &str) {
        let content = format!("{text}{}", Key::Enter);
        self.fill("#composer textarea[name=content]", &content)
            .await;
    }

    /// The messages of the open conversation, oldest first: what each `.content` shows.
    pub async fn message_texts(&self) -> Result<Vec<String>, String> {
        let texts = self
            .js(
                "return [...document.querySelectorAll('#messages .message')] \
                 .map(m => (m.querySelector('.content')?.textContent ?? '').trim());",
                vec![],
            )
            .await?;
        serde_json::from_value(texts).map_err(|e| e.to_string())
    }

    /// Waits until the last messages of the open conversation are `expected`, in that
    /// order (earlier ones may come before them).
    pub async fn wait_for_messages(&self, expected: &[&str]) {
        eventually(
            format_args!("{} to show the messages {expected:?}", self.name),
            || async {
                let shown = self.message_texts().await?;
                if shown.ends_with(&expected.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>()) {
                    Ok(())
                } else {
                    Err(format!("{shown:?}"))
                }
            },
        )
        .await;
    }

    /// The `.message` of the open conversation whose content is `text`, once it is shown
    /// and confirmed by the server.
    pub async fn message(&self, text: &str) -> Element {
        eventually(format_args!("{} to show {text:?}", self.name), || async {
            let messages = self
                .client
                // Confirmed by the server: a message still being sent has no id yet.
                .find_all(Locator::Css(
                    "#messages .message[data-message-id]:not([data-message-id=''])",
                ))
                .await
                .map_err(|e| e.to_string())?;
            for message in messages {
                let Ok(content) = message.find(Locator::Css(".content")).await else {
                    continue;
                };
                if content.text().await.is_ok_and(|t| t.trim() == text) {
                    return Ok(message);
                }
            }
            Err(format!("{:?}", self.message_texts().await))
        })
        .await
    }

    /// A CSS selector for the `.message` whose content is `text`, by its id, so that it
    /// still finds the message once its text is edited.
    pub async fn message_selector(&self, text: &str) -> String {
        let message = self.message(text).await;
        let id = message
            .attr("data-message-id")
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{text:?} has a data-message-id"));
        format!("#messages .message[data-message-id=\"{id}\"]")
    }

    /// Clicks the `action` button (`edit`, `delete`, `react`, `reply`) of the message whose
    /// content is `text`.
    pub async fn act_on(&self, text: &str, action: &str) {
        let selector = self.message_selector(text).await;
        self.click(&format!("{selector} [data-action={action}]"))
            .await;
    }

    /// Waits until the `.ticks` of the own message `text` say `state`.
    pub async fn wait_for_ticks(&self, text: &str, state: &str) {
        let selector = self.message_selector(text).await;
        let ticks = format!("{selector} .ticks[data-state={state}]");
        eventually(
            format_args!("{}'s {text:?} to be ticked {state}", self.name),
            || async {
                let now = self
                    .js(
                        "return document.querySelector(arguments[0])?.dataset.state ?? null;",
                        vec![json!(format!("{selector} .ticks"))],
                    )
                    .await?;
                if self.client.find(Locator::Css(&ticks)).await.is_ok() {
                    Ok(())
                } else {
                    Err(format!("ticks {now}"))
                }
            },
        )
        .await;
    }

    /// The connection state `#connection` shows.
    pub async fn connection_state(&self) -> String {
        let state = self
            .js(
                "return document.querySelector('#connection')?.dataset.state ?? '';",
                vec![],
            )
            .await;
        state
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits until `#connection` says `state`.
    pub async fn wait_for_connection(&self, state: &str) {
        eventually(
            format_args!("{}'s connection to be {state}", self.name),
            || async {
                let now = self.connection_state().await;
                if now == state { Ok(()) } else { Err(now) }
            },
        )
        .await;
    }

    /// Saves a PNG of the page as `<name>.png` in `CHAT_SCREENSHOTS_DIR`, when it is set.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("CHAT_SCREENSHOTS_DIR").map(PathBuf::from) else {
            return;
        };
        // Nothing mid-animation, and no caret blinking in the picture.
        let _ = self.js("document.activeElement?.blur?.();", vec![]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{} takes a screenshot: {e}", self.name));
        std::fs::create_dir_all(&dir).expect("the screenshots directory can be made");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is saved");
    }
}

/// The CSS selector of conversation `id` in the inbox.
pub fn inbox_item(id: &str) -> String {
    format!("#inbox .conversation[data-conversation-id=\"{id}\"]")
}

#[cfg(test)]
mod tests {
    use super::announced_port;

    #[test]
    fn the_port_chromedriver_announces_is_read_from_its_output() {
        let output = "Starting ChromeDriver 156.0 on port 0\nOnly local connections are \
                      allowed.\nChromeDriver was started successfully on port 43535.";
        assert_eq!(announced_port(output), Some(43535));
        assert_eq!(
            announced_port("ChromeDriver was started successfully on port 435"),
            None
        );
    }
}
