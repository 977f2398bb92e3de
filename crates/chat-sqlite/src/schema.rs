//! Diesel's view of the tables in `migrations/sqlite/`.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        full_name -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        bio -> Nullable<Text>,
        is_active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        token_generation -> BigInt,
    }
}

diesel::table! {
    revoked_tokens (token_id) {
        token_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    server_settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        kind -> Text,
        name -> Nullable<Text>,
        direct_key -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_message_seq -> Nullable<BigInt>,
        last_activity_at -> Timestamp,
        change_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    conversation_members (conversation_id, user_id) {
        conversation_id -> Text,
        user_id -> Text,
        role -> Text,
        joined_at -> Timestamp,
        last_read_seq -> BigInt,
        read_at -> Nullable<Timestamp>,
        marker_seq -> Nullable<BigInt>,
        settings_seq -> Nullable<BigInt>,
        muted_until -> Nullable<Timestamp>,
        archived -> Bool,
        archived_seq -> Nullable<BigInt>,
        last_delivered_seq -> BigInt,
        delivered_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    messages (seq) {
        seq -> BigInt,
        id -> Text,
        conversation_id -> Text,
        sender_id -> Text,
        content -> Text,
        client_message_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        change_seq -> Nullable<BigInt>,
        edited_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        deleted_by -> Nullable<Text>,
        pinned_at -> Nullable<Timestamp>,
        pinned_by -> Nullable<Text>,
        reply_to_id -> Nullable<Text>,
        thread_root_id -> Nullable<Text>,
    }
}

diesel::table! {
    threads (root_id) {
        root_id -> Text,
        reply_count -> BigInt,
        last_reply_seq -> BigInt,
        last_reply_at -> Timestamp,
    }
}

diesel::table! {
    thread_participants (root_id, user_id) {
        root_id -> Text,
        user_id -> Text,
        joined_seq -> BigInt,
    }
}

diesel::table! {
    reactions (message_id, emoji, user_id) {
        message_id -> Text,
        emoji -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    message_mentions (message_id, user_id) {
        message_id -> Text,
        conversation_id -> Text,
        user_id -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    hidden_messages (user_id, message_id) {
        user_id -> Text,
        message_id -> Text,
        conversation_id -> Text,
        seq -> BigInt,
    }
}

diesel::table! {
    departures (conversation_id, user_id) {
        conversation_id -> Text,
        user_id -> Text,
        seq -> BigInt,
        departed_at -> Timestamp,
    }
}

diesel::table! {
    attachments (id) {
        id -> Text,
        uploader_id -> Text,
        blob_key -> Text,
        name -> Text,
        size -> BigInt,
        content_type -> Text,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        thumbnail_key -> Nullable<Text>,
        thumbnail_type -> Nullable<Text>,
        thumbnail_size -> Nullable<BigInt>,
        created_at -> Timestamp,
        message_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        position -> Integer,
    }
}

diesel::table! {
    blobs (key) {
        key -> Text,
        size -> BigInt,
        last_put_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        conversation_id -> Nullable<Text>,
        message_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        report_id -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        url -> Text,
        secret -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        webhook_id -> Text,
        event_id -> Text,
        kind -> Text,
        conversation_id -> Nullable<Text>,
        message_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        report_id -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        count -> Integer,
        created_at -> Timestamp,
        attempts -> Integer,
        first_attempt_at -> Nullable<Timestamp>,
        next_attempt_at -> Nullable<Timestamp>,
        lease_holder -> Nullable<Text>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    user_presence (user_id) {
        user_id -> Text,
        last_seen_at -> Nullable<Timestamp>,
        hide_last_seen -> Bool,
    }
}

diesel::joinable!(conversation_members -> conversations (conversation_id));
diesel::joinable!(conversation_members -> users (user_id));
diesel::joinable!(user_presence -> users (user_id));
diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(hidden_messages -> conversations (conversation_id));
diesel::joinable!(thread_participants -> threads (root_id));
diesel::joinable!(message_mentions -> conversations (conversation_id));
diesel::joinable!(departures -> conversations (conversation_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    attachments,
    blobs,
    users,
    server_settings,
    revoked_tokens,
    conversations,
    conversation_members,
    messages,
    reactions,
    hidden_messages,
    threads,
    thread_participants,
    message_mentions,
    departures,
    outbox,
    webhooks,
    webhook_deliveries,
    user_presence,
);

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        refresh_hash -> Text,
        device -> Nullable<Text>,
        client_address -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        generation -> BigInt,
        revoked -> Bool,
    }
}
// Blocking, reports and server admins (issue #17).

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> Text,
        blocked_id -> Text,
        blocked_at -> Timestamp,
    }
}

diesel::table! {
    server_admins (user_id) {
        user_id -> Text,
    }
}

diesel::table! {
    admin_audit (id) {
        id -> BigInt,
        actor_id -> Nullable<Text>,
        action -> Text,
        target -> Text,
        detail -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    reports (id) {
        id -> Text,
        reporter_id -> Text,
        message_id -> Nullable<Text>,
        subject_id -> Text,
        reason -> Text,
        status -> Text,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
        note -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(blocks, server_admins, admin_audit, reports, users);
