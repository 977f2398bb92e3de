//! The REST client against a real server: started on a random port with its own SQLite
//! file, as chat-server's end-to-end tests start it.

use std::time::Duration;

use chat_client::types::{
    DeadLetterQuery, DeleteScope, HistoryCursor, InboxQuery, NewConversation, NewMessage,
    PresencePrivacy, ProfileChanges, ReportSubject, SearchQuery, SettingsChange, Signup,
};
use chat_client::{Client, Error};
use chat_server::{Application, Config};

struct Server {
    address: String,
    _shutdown: chat_server::Shutdown,
    dir: tempfile::TempDir,
}

fn config(dir: &tempfile::TempDir) -> Config {
    Config::for_tests(format!("sqlite://{}", dir.path().join("chat.db").display()))
}

async fn spawn(change: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = config(&dir);
    change(&mut config);
    let app = Application::build(config).await.expect("the server builds");
    let port = app.port();
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    Server {
        address: format!("http://127.0.0.1:{port}"),
        _shutdown: shutdown,
        dir,
    }
}

const PASSWORD: &str = "correct horse battery";

fn signup_of(name: &str) -> Signup {
    Signup {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: PASSWORD.into(),
        full_name: Some(format!("{name} Example")),
    }
}

/// A client of `server` logged in as a new user `name`.
async fn user(server: &Server, name: &str) -> Client {
    let client = Client::new(&server.address).unwrap();
    client.signup(&signup_of(name)).await.unwrap();
    client.login(name, PASSWORD).await.unwrap();
    client
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

#[tokio::test]
async fn a_new_user_signs_up_logs_in_and_reads_their_account() {
    let server = spawn(|_| {}).await;
    let client = Client::new(&server.address).unwrap();

    let created = client.signup(&signup_of("alice")).await.unwrap();
    assert_eq!(created.username, "alice");
    assert_eq!(created.email, "alice@example.com");
    assert!(
        client.session().await.is_none(),
        "signing up does not log in"
    );

    let session = client.login_as("alice", PASSWORD, "laptop").await.unwrap();
    let me = client.me().await.unwrap();
    assert_eq!(me, created);
    assert_eq!(client.profile().await.unwrap().id, me.id);

    let sessions = client.sessions().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, session.session_id);
    assert_eq!(sessions[0].device.as_deref(), Some("laptop"));
    assert!(sessions[0].current);

    let health = client.health().await.unwrap();
    assert!(health.is_ok(), "{health:?}");
}

#[tokio::test]
async fn errors_come_back_with_the_api_code() {
    let server = spawn(|_| {}).await;
    let client = Client::new(&server.address).unwrap();

    assert!(matches!(client.me().await, Err(Error::NotLoggedIn)));

    client.signup(&signup_of("alice")).await.unwrap();
    let taken = client.signup(&signup_of("alice")).await.unwrap_err();
    assert_eq!(taken.status(), Some(409));
    assert_eq!(taken.code(), Some("username_taken"));

    let wrong = client.login("alice", "not the password").await.unwrap_err();
    assert!(
        matches!(&wrong, Error::Api { status: 401, code, .. } if code == "invalid_credentials"),
        "{wrong:?}"
    );

    client.login("alice", PASSWORD).await.unwrap();
    let missing = client.conversation(uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing:?}");

    let not_admin = client.admin_reports(None, None).await.unwrap_err();
    assert_eq!(not_admin.status(), Some(403), "{not_admin:?}");

    let bad = client
        .send_message(uuid::Uuid::new_v4(), &NewMessage::text(""))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("validation_error"), "{bad:?}");
}

#[tokio::test]
async fn the_session_outlives_its_access_token_even_under_concurrent_requests() {
    let server = spawn(|config| config.token_ttl = Duration::from_secs(1)).await;
    let client = user(&server, "alice").await;
    let first = client.session().await.unwrap();

    // A wait past the access token's expiry, not a timed assertion.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Every request finds the token due for a refresh at once; the refresh token is single
    // use, so a second redemption would end the session. One refresh serves them all.
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.me().await })
    });
    for call in calls {
        let me = call.await.unwrap().expect("every request succeeds");
        assert_eq!(me.username, "alice");
    }
    let refreshed = client.session().await.unwrap();
    assert_eq!(refreshed.session_id, first.session_id);
    assert_ne!(refreshed.refresh_token, first.refresh_token);

    // And again, after another expiry: the rotated refresh token works too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(client.sessions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_token_the_server_finds_expired_is_refreshed_and_the_request_sent_again() {
    let server = spawn(|config| config.token_ttl = Duration::from_secs(1)).await;
    let client = user(&server, "alice").await;
    // Past the expiry by the server's clock, which counts whole seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // This client's clock says the token is good for an hour more; the server's does not.
    let mut skewed = client.session().await.unwrap();
    skewed.refresh_at = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    skewed.expires_at = skewed.refresh_at;
    client.set_session(Some(skewed.clone())).await;

    assert_eq!(client.me().await.unwrap().username, "alice");
    assert_ne!(
        client.session().await.unwrap().access_token,
        skewed.access_token
    );
}

#[tokio::test]
async fn a_stored_session_is_resumed_until_it_is_logged_out() {
    let server = spawn(|_| {}).await;
    let client = user(&server, "alice").await;
    let stored = serde_json::to_string(&client.session().await.unwrap()).unwrap();

    let restored = serde_json::from_str(&stored).unwrap();
    let later = Client::from_session(&server.address, restored).unwrap();
    assert_eq!(later.me().await.unwrap().username, "alice");

    later.logout().await.unwrap();
    assert!(later.session().await.is_none());
    let ended = client.me().await.unwrap_err();
    assert_eq!(ended.status(), Some(401), "{ended:?}");
}

#[tokio::test]
async fn a_walk_through_the_main_routes() {
    let server = spawn(|_| {}).await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let carol = user(&server, "carol").await;
    let alice_id = alice.me().await.unwrap().id;
    let bob_id = bob.me().await.unwrap().id;
    let carol_id = carol.me().await.unwrap().id;

    // Users and profiles.
    let found = alice.list_users(Some("bo"), None, None).await.unwrap();
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), [bob_id]);
    assert_eq!(alice.user(bob_id).await.unwrap().username, "bob");
    let changed = alice
        .update_me(&ProfileChanges {
            bio: Some("hello".into()),
            ..ProfileChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(changed.bio.as_deref(), Some("hello"));
    let with_avatar = alice
        .set_avatar(Some("https://cdn.example.com/a.png"))
        .await
        .unwrap();
    assert_eq!(
        with_avatar.avatar_url.as_deref(),
        Some("https://cdn.example.com/a.png")
    );

    // A direct conversation and a group.
    let direct = alice
        .create_conversation(&NewConversation::direct(bob_id))
        .await
        .unwrap();
    assert!(!direct.is_group);
    let again = bob
        .create_conversation(&NewConversation::direct(alice_id))
        .await
        .unwrap();
    assert_eq!(again.id, direct.id, "a pair has one direct conversation");
    let group = alice
        .create_conversation(&NewConversation::group("team", vec![bob_id]))
        .await
        .unwrap();
    let renamed = alice.rename_conversation(group.id, "crew").await.unwrap();
    assert_eq!(renamed.name.as_deref(), Some("crew"));
    let grown = alice.add_members(group.id, &[carol_id]).await.unwrap();
    assert_eq!(grown.participants.len(), 3);
    let promoted = alice
        .set_member_role(group.id, bob_id, "admin")
        .await
        .unwrap();
    let bob_there = promoted.participants.iter().find(|p| p.id == bob_id);
    assert_eq!(bob_there.unwrap().role, "admin");
    carol.leave_conversation(group.id).await.unwrap();
    assert_eq!(
        alice
            .conversation(group.id)
            .await
            .unwrap()
            .participants
            .len(),
        2
    );

    // Messages: send (idempotently), history, edit, react, pin, reply, thread.
    let hello = NewMessage::text("hello bob, shall we deploy?").client_message_id("tab-1");
    let sent = alice.send_message(direct.id, &hello).await.unwrap();
    let retried = alice.send_message(direct.id, &hello).await.unwrap();
    assert_eq!(
        retried.id, sent.id,
        "a retry with the same client_message_id"
    );
    let edited = alice
        .edit_message(sent.id, "hello bob, shall we deploy today?")
        .await
        .unwrap();
    assert!(edited.edited_at.is_some());
    let reacted = bob.add_reaction(sent.id, "👍").await.unwrap();
    assert_eq!(reacted.reactions.len(), 1);
    assert_eq!(reacted.reactions[0].emoji, "👍");
    assert!(reacted.reactions[0].me);
    let unreacted = bob.remove_reaction(sent.id, "👍").await.unwrap();
    assert!(unreacted.reactions.is_empty());
    bob.pin_message(direct.id, sent.id).await.unwrap();
    let pins = alice.pins(direct.id).await.unwrap();
    assert_eq!(pins.iter().map(|m| m.id).collect::<Vec<_>>(), [sent.id]);
    alice.unpin_message(direct.id, sent.id).await.unwrap();
    assert!(alice.pins(direct.id).await.unwrap().is_empty());

    let reply = bob
        .send_message(direct.id, &NewMessage::text("yes!").reply_to(sent.id))
        .await
        .unwrap();
    assert_eq!(reply.reply_to.as_ref().map(|r| r.id), Some(sent.id));
    let in_thread = bob
        .send_message(
            direct.id,
            &NewMessage::text("after lunch").in_thread(sent.id),
        )
        .await
        .unwrap();
    let thread = alice
        .thread(sent.id, HistoryCursor::Latest, None)
        .await
        .unwrap();
    assert_eq!(
        thread.iter().map(|m| m.id).collect::<Vec<_>>(),
        [in_thread.id]
    );

    let history = alice
        .messages(direct.id, HistoryCursor::Latest, None)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|m| m.id).collect::<Vec<_>>(),
        [sent.id, reply.id],
        "thread replies are not in the history"
    );
    let root = &history[0];
    assert_eq!(root.thread.as_ref().map(|t| t.reply_count), Some(1));
    let older = alice
        .messages(direct.id, HistoryCursor::Before(reply.seq), Some(10))
        .await
        .unwrap();
    assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), [sent.id]);

    // Search.
    let hits = bob
        .search_messages(&SearchQuery::text("deploy"))
        .await
        .unwrap();
    assert_eq!(
        hits.hits.iter().map(|h| h.message.id).collect::<Vec<_>>(),
        [sent.id]
    );

    // Unread counts and read markers.
    let unread = alice.unread_counts().await.unwrap();
    assert!(unread.unread_count >= 1, "{unread:?}");
    alice.mark_read(in_thread.id).await.unwrap();
    assert_eq!(alice.unread_counts().await.unwrap().unread_count, 0);
    let marker = alice.set_read_marker(direct.id, 0).await.unwrap();
    assert!(marker.unread_count >= 1, "{marker:?}");
    let muted = alice
        .update_settings(
            direct.id,
            &SettingsChange {
                archived: Some(true),
                ..SettingsChange::default()
            },
        )
        .await
        .unwrap();
    assert!(muted.archived);
    let archive = alice
        .list_conversations(&InboxQuery {
            archived: Some(true),
            ..InboxQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        archive
            .iter()
            .map(|c| c.conversation.id)
            .collect::<Vec<_>>(),
        [direct.id]
    );

    // Files: upload an image, send it, download it back.
    let image = png(400, 300);
    let uploaded = alice.upload("holiday.png", image.clone()).await.unwrap();
    assert_eq!(uploaded.content_type, "image/png");
    assert_eq!((uploaded.width, uploaded.height), (Some(400), Some(300)));
    let with_file = alice
        .send_message(
            group.id,
            &NewMessage::text("the view").attachments(vec![uploaded.id]),
        )
        .await
        .unwrap();
    assert_eq!(with_file.attachments[0].id, uploaded.id);
    let downloaded = bob.download(uploaded.id).await.unwrap();
    assert_eq!(downloaded.bytes, image);
    assert_eq!(downloaded.content_type.as_deref(), Some("image/png"));
    let thumbnail = bob.thumbnail(uploaded.id).await.unwrap();
    assert!(!thumbnail.bytes.is_empty());

    // Deleting.
    let tombstone = alice
        .delete_message(with_file.id, DeleteScope::Everyone)
        .await
        .unwrap()
        .expect("a delete for everyone answers the tombstone");
    assert!(tombstone.content.is_none());
    let hidden = bob.delete_message(reply.id, DeleteScope::Me).await.unwrap();
    assert!(hidden.is_none());

    // The change feed.
    let feed = bob.sync(0, None).await.unwrap();
    assert!(!feed.events.is_empty());
    assert!(feed.next > 0);

    // Blocks, presence, privacy, reports, sessions.
    alice.block_user(carol_id).await.unwrap();
    let blocked = alice.blocked_users().await.unwrap();
    assert_eq!(
        blocked.iter().map(|b| b.user.id).collect::<Vec<_>>(),
        [carol_id]
    );
    let refused = carol
        .create_conversation(&NewConversation::direct(alice_id))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("blocked"), "{refused:?}");
    alice.unblock_user(carol_id).await.unwrap();
    assert!(alice.blocked_users().await.unwrap().is_empty());

    let presence = alice.presence(bob_id).await.unwrap();
    assert_eq!(presence.user_id, bob_id);
    assert_eq!(presence.status, "offline");
    let several = alice.query_presence(&[bob_id]).await.unwrap();
    assert_eq!(several, [presence]);
    let privacy = PresencePrivacy {
        hide_last_seen: true,
    };
    assert_eq!(alice.set_presence_privacy(privacy).await.unwrap(), privacy);
    assert_eq!(alice.presence_privacy().await.unwrap(), privacy);

    let report = bob
        .report(ReportSubject::Message(sent.id), "spam")
        .await
        .unwrap();
    assert_eq!(report.user_id, alice_id);
    assert_eq!(report.status, "open");

    let phone = Client::new(&server.address).unwrap();
    phone.login_as("alice", PASSWORD, "phone").await.unwrap();
    let listed = alice.sessions().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(alice.revoke_other_sessions().await.unwrap(), 1);
    assert_eq!(phone.me().await.unwrap_err().status(), Some(401));
    alice
        .change_password(PASSWORD, "a new horse battery")
        .await
        .unwrap();
    assert!(
        Client::new(&server.address)
            .unwrap()
            .login("alice", "a new horse battery")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_client_given_only_an_access_token_uses_it_and_never_refreshes() {
    let server = spawn(|config| config.token_ttl = Duration::from_secs(1)).await;
    let alice = user(&server, "alice").await;
    let token = alice.session().await.unwrap().access_token;

    let borrowed = alice.without_session().with_access_token(&token);
    assert_eq!(borrowed.me().await.unwrap().username, "alice");

    // Past the expiry by the server's clock, which counts whole seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = borrowed.me().await.unwrap_err();
    assert_eq!(expired.code(), Some("token_expired"), "{expired:?}");
    // The session it was taken from is untouched, and refreshes as usual.
    assert_eq!(alice.me().await.unwrap().username, "alice");
    assert!(alice.without_session().session().await.is_none());
}

#[tokio::test]
async fn a_server_admin_moderates_and_manages_webhooks() {
    let server = spawn(|_| {}).await;
    let root = user(&server, "root").await;
    let alice = user(&server, "alice").await;
    let bob = user(&server, "bob").await;
    let granted = chat_server::admin::set_admin(&config(&server.dir), "root", true).unwrap();
    assert_eq!(granted.user.username.as_str(), "root");
    let alice_id = alice.me().await.unwrap().id;
    let bob_id = bob.me().await.unwrap().id;

    let page = root.admin_users(Some("alice"), None, None).await.unwrap();
    assert_eq!(
        page.users.iter().map(|u| u.id).collect::<Vec<_>>(),
        [alice_id]
    );
    assert_eq!(page.users[0].email, "alice@example.com");

    assert!(!root.deactivate_user(bob_id).await.unwrap().is_active);
    assert_eq!(bob.me().await.unwrap_err().status(), Some(401));
    assert!(root.reactivate_user(bob_id).await.unwrap().is_active);
    bob.login("bob", PASSWORD).await.unwrap();

    let chat = alice
        .create_conversation(&NewConversation::direct(bob_id))
        .await
        .unwrap();
    let rude = alice
        .send_message(chat.id, &NewMessage::text("rude words"))
        .await
        .unwrap();
    let report = bob
        .report(ReportSubject::Message(rude.id), "rude")
        .await
        .unwrap();
    let user_report = bob
        .report(ReportSubject::User(alice_id), "keeps being rude")
        .await
        .unwrap();
    assert_eq!(user_report.message_id, None);
    let open = root.admin_reports(Some("open"), None).await.unwrap();
    assert_eq!(open.len(), 2);
    let resolved = root
        .resolve_report(report.id, Some("message removed"))
        .await
        .unwrap();
    assert_eq!(resolved.status, "resolved");
    assert_eq!(resolved.note.as_deref(), Some("message removed"));
    let tombstone = root.admin_delete_message(rude.id).await.unwrap();
    assert!(tombstone.content.is_none());
    let audit = root.audit_log(None, Some(50)).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|entry| entry.action.contains("deactivate")),
        "{audit:?}"
    );

    let hook = root
        .create_webhook("https://push.example.com/chatd", "whsec_0123456789abcdef")
        .await
        .unwrap();
    assert_eq!(root.webhooks().await.unwrap(), std::slice::from_ref(&hook));
    let dead = root
        .dead_letters(&DeadLetterQuery::default())
        .await
        .unwrap();
    assert!(dead.is_empty(), "{dead:?}");
    let missing = root.replay_dead_letter(424242).await.unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing:?}");
    root.delete_webhook(hook.id).await.unwrap();
    assert!(root.webhooks().await.unwrap().is_empty());

    let refused = alice.webhooks().await.unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused:?}");
}
