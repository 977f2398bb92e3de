//! Diesel's view of the tables in `migrations/postgres/`.

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        full_name -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        bio -> Nullable<Text>,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        token_generation -> BigInt,
    }
}

diesel::table! {
    revoked_tokens (token_id) {
        token_id -> Text,
        expires_at -> Timestamptz,
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
        id -> Uuid,
        kind -> Text,
        name -> Nullable<Text>,
        direct_key -> Nullable<Text>,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_message_seq -> Nullable<BigInt>,
        last_activity_at -> Timestamptz,
        change_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    conversation_members (conversation_id, user_id) {
        conversation_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
        last_read_seq -> BigInt,
        read_at -> Nullable<Timestamptz>,
        marker_seq -> Nullable<BigInt>,
        settings_seq -> Nullable<BigInt>,
        muted_until -> Nullable<Timestamptz>,
        archived -> Bool,
        archived_seq -> Nullable<BigInt>,
        last_delivered_seq -> BigInt,
        delivered_seq -> Nullable<BigInt>,
    }
}

diesel::table! {
    messages (seq) {
        seq -> BigInt,
        id -> Uuid,
        conversation_id -> Uuid,
        sender_id -> Uuid,
        content -> Text,
        client_message_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        change_seq -> Nullable<BigInt>,
        edited_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        deleted_by -> Nullable<Uuid>,
        pinned_at -> Nullable<Timestamptz>,
        pinned_by -> Nullable<Uuid>,
        reply_to_id -> Nullable<Uuid>,
        thread_root_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    threads (root_id) {
        root_id -> Uuid,
        reply_count -> BigInt,
        last_reply_seq -> BigInt,
        last_reply_at -> Timestamptz,
    }
}

diesel::table! {
    thread_participants (root_id, user_id) {
        root_id -> Uuid,
        user_id -> Uuid,
        joined_seq -> BigInt,
    }
}

diesel::table! {
    reactions (message_id, emoji, user_id) {
        message_id -> Uuid,
        emoji -> Text,
        user_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    message_mentions (message_id, user_id) {
        message_id -> Uuid,
        conversation_id -> Uuid,
        user_id -> Uuid,
        seq -> BigInt,
    }
}

diesel::table! {
    hidden_messages (user_id, message_id) {
        user_id -> Uuid,
        message_id -> Uuid,
        conversation_id -> Uuid,
        seq -> BigInt,
    }
}

diesel::table! {
    departures (conversation_id, user_id) {
        conversation_id -> Uuid,
        user_id -> Uuid,
        seq -> BigInt,
        departed_at -> Timestamptz,
    }
}

diesel::table! {
    /// One row: the last seq handed out.
    message_seq (only_row) {
        only_row -> Bool,
        last -> BigInt,
    }
}

diesel::table! {
    attachments (id) {
        id -> Uuid,
        uploader_id -> Uuid,
        blob_key -> Text,
        name -> Text,
        size -> BigInt,
        content_type -> Text,
        width -> Nullable<Integer>,
        height -> Nullable<Integer>,
        thumbnail_key -> Nullable<Text>,
        thumbnail_type -> Nullable<Text>,
        thumbnail_size -> Nullable<BigInt>,
        created_at -> Timestamptz,
        message_id -> Nullable<Uuid>,
        conversation_id -> Nullable<Uuid>,
        position -> Integer,
    }
}

diesel::table! {
    blobs (key) {
        key -> Text,
        size -> BigInt,
        last_put_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        conversation_id -> Nullable<Uuid>,
        message_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        report_id -> Nullable<Uuid>,
        seq -> Nullable<BigInt>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        url -> Text,
        secret -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        webhook_id -> Uuid,
        event_id -> Uuid,
        kind -> Text,
        conversation_id -> Nullable<Uuid>,
        message_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        report_id -> Nullable<Uuid>,
        seq -> Nullable<BigInt>,
        count -> Integer,
        created_at -> Timestamptz,
        attempts -> Integer,
        first_attempt_at -> Nullable<Timestamptz>,
        next_attempt_at -> Nullable<Timestamptz>,
        lease_holder -> Nullable<Text>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    user_presence (user_id) {
        user_id -> Uuid,
        last_seen_at -> Nullable<Timestamptz>,
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
    message_seq,
    outbox,
    webhooks,
    webhook_deliveries,
    user_presence,
);

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        refresh_hash -> Text,
        device -> Nullable<Text>,
        client_address -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        generation -> BigInt,
        revoked -> Bool,
    }
}
// Blocking, reports and server admins (issue #17).

diesel::table! {
    blocks (blocker_id, blocked_id) {
        blocker_id -> Uuid,
        blocked_id -> Uuid,
        blocked_at -> Timestamptz,
    }
}

diesel::table! {
    server_admins (user_id) {
        user_id -> Uuid,
    }
}

diesel::table! {
    admin_audit (id) {
        id -> BigInt,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        target -> Text,
        detail -> Text,
        at -> Timestamptz,
    }
}

diesel::table! {
    reports (id) {
        id -> Uuid,
        reporter_id -> Uuid,
        message_id -> Nullable<Uuid>,
        subject_id -> Uuid,
        reason -> Text,
        status -> Text,
        created_at -> Timestamptz,
        resolved_at -> Nullable<Timestamptz>,
        resolved_by -> Nullable<Uuid>,
        note -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(blocks, server_admins, admin_audit, reports, users);
