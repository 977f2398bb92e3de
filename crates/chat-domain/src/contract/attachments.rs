//! The rules of attachments: an upload is attached inside the append that sends it (the
//! sender's own, unattached uploads only, or nothing is stored), every read of the message
//! carries it, a delete for everyone drops it, the quota is checked with the insert, and the
//! sweep removes unattached uploads and unreferenced blobs only.

use chrono::Duration;

use crate::attachment::{Attachment, BlobKey, FileName, Thumbnail};
use crate::contract::replies::every_read;
use crate::contract::{Fixture, Stores, created, existing};
use crate::message::{ClientMessageId, NewMessage};
use crate::{AttachmentId, ConversationId, StoreError, UserId};

fn key(n: u8) -> BlobKey {
    BlobKey::from_digest(&[n; 32])
}

/// An upload of `size` bytes by `uploader`, kept as blob `blob`, stored now.
fn upload<S: Stores + ?Sized>(
    f: &Fixture<'_, S>,
    uploader: UserId,
    blob: u8,
    size: u64,
) -> Attachment {
    let attachment = Attachment {
        id: AttachmentId::new(),
        uploader_id: uploader,
        name: FileName::parse("photo.png"),
        size,
        content_type: "image/png".into(),
        blob_key: key(blob),
        width: Some(640),
        height: Some(480),
        thumbnail: Some(Thumbnail {
            key: key(blob.wrapping_add(100)),
            content_type: "image/jpeg".into(),
            size: 10,
        }),
        created_at: f.now(),
        message_id: None,
        conversation_id: None,
    };
    let now = f.now();
    f.store.touch_blob(&attachment.blob_key, size, now).unwrap();
    f.store
        .touch_blob(&attachment.thumbnail.as_ref().unwrap().key, 10, now)
        .unwrap();
    assert!(f.store.insert_upload(&attachment, u64::MAX).unwrap());
    attachment
}

fn with_files<S: Stores + ?Sized>(
    f: &Fixture<'_, S>,
    conversation: ConversationId,
    sender: UserId,
    ids: &[AttachmentId],
) -> NewMessage {
    NewMessage {
        attachment_ids: ids.to_vec(),
        ..f.message(conversation, sender, "files")
    }
}

pub fn an_upload_is_attached_in_the_append_and_every_read_carries_it<S: Stores + ?Sized>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let group = f.group(&[alice, bob]);
    let (one, two) = (upload(&f, alice, 1, 100), upload(&f, alice, 2, 200));
    let sent = created(
        f.append(&with_files(&f, group, alice, &[two.id, one.id]))
            .unwrap(),
    );
    let ids: Vec<AttachmentId> = sent.attachments.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![two.id, one.id], "in the order sent");
    let attached = &sent.attachments[1];
    assert_eq!(attached.message_id, Some(sent.id));
    assert_eq!(attached.conversation_id, Some(group));
    assert_eq!(attached.blob_key, one.blob_key);
    assert_eq!(attached.thumbnail, one.thumbnail);
    assert_eq!((attached.width, attached.height), (Some(640), Some(480)));
    for read in every_read(store, bob, group, sent.id) {
        assert_eq!(read.attachments, sent.attachments, "{read:?}");
    }
    let found = store.find_upload(one.id).unwrap().unwrap();
    assert_eq!(found.message_id, Some(sent.id));
    assert_eq!(found.conversation_id, Some(group));
    // A message without files carries none.
    assert!(f.send(group, bob, "plain").attachments.is_empty());
}

pub fn only_the_senders_own_unattached_uploads_attach_and_a_refusal_stores_nothing<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let group = f.group(&[alice, bob]);
    let mine = upload(&f, alice, 1, 100);
    let bobs = upload(&f, bob, 2, 100);
    let before = store.latest_seq().unwrap();
    let refused = f.append(&with_files(&f, group, alice, &[mine.id, bobs.id]));
    assert!(
        matches!(refused, Err(StoreError::Attachments)),
        "{refused:?}"
    );
    let missing = f.append(&with_files(&f, group, alice, &[AttachmentId::new()]));
    assert!(
        matches!(missing, Err(StoreError::Attachments)),
        "{missing:?}"
    );
    assert_eq!(store.latest_seq().unwrap(), before, "nothing was stored");
    assert_eq!(
        store.find_upload(mine.id).unwrap().unwrap().message_id,
        None,
        "the own upload was not attached either"
    );
    created(f.append(&with_files(&f, group, alice, &[mine.id])).unwrap());
    let again = f.append(&with_files(&f, group, alice, &[mine.id]));
    assert!(
        matches!(again, Err(StoreError::Attachments)),
        "attached once: {again:?}"
    );
}

pub fn a_retry_gets_the_stored_message_with_its_attachments<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let alice = f.user("alice");
    let bob = f.user("bob");
    let direct = f.direct(alice, bob);
    let file = upload(&f, alice, 1, 100);
    let keyed = NewMessage {
        client_message_id: Some(ClientMessageId::parse("k1").unwrap()),
        ..with_files(&f, direct, alice, &[file.id])
    };
    let first = created(f.append(&keyed).unwrap());
    let retried = existing(f.append(&keyed).unwrap());
    assert_eq!(retried.id, first.id);
    assert_eq!(retried.attachments, first.attachments);
}

pub fn a_delete_for_everyone_drops_its_attachments_and_unreferences_their_blobs<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let group = f.group(&[alice, bob]);
    let file = upload(&f, alice, 1, 100);
    // Bob uploaded the same bytes (no thumbnail of his own).
    let shared = Attachment {
        blob_key: key(1),
        ..upload_row(&f, bob, 100)
    };
    assert!(store.insert_upload(&shared, u64::MAX).unwrap());
    let sent = created(f.append(&with_files(&f, group, alice, &[file.id])).unwrap());
    let deleted = store.delete(sent.id, alice, f.now(), &mut |_| {}).unwrap();
    assert!(deleted.message.attachments.is_empty());
    assert_eq!(store.find_upload(file.id).unwrap(), None);
    for read in every_read(store, bob, group, sent.id) {
        assert!(read.attachments.is_empty());
    }
    assert_eq!(store.used_bytes(alice).unwrap(), 0);
    // Bob's upload of the same bytes keeps the blob; the thumbnail only alice's used goes.
    let later = f.now() + Duration::hours(2);
    let taken = store.take_unreferenced_blobs(later, 100).unwrap();
    assert_eq!(taken, vec![key(101)]);
    assert!(store.find_upload(shared.id).unwrap().is_some());
}

pub fn the_sweep_takes_old_unattached_uploads_and_untouched_unreferenced_blobs_only<
    S: Stores + ?Sized,
>(
    store: &S,
) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    let group = f.group(&[alice, bob]);
    let old = upload(&f, alice, 1, 100);
    let sent = upload(&f, alice, 2, 100);
    created(f.append(&with_files(&f, group, alice, &[sent.id])).unwrap());
    let cut = f.now();
    let young = upload(&f, alice, 3, 100);
    assert_eq!(store.remove_unattached(cut).unwrap(), 1);
    assert_eq!(store.find_upload(old.id).unwrap(), None);
    assert!(store.find_upload(sent.id).unwrap().is_some());
    assert!(store.find_upload(young.id).unwrap().is_some());
    // Blobs touched after `before` stay even when unreferenced (an upload in flight).
    assert_eq!(
        store
            .take_unreferenced_blobs(cut - Duration::hours(1), 100)
            .unwrap(),
        vec![]
    );
    let mut taken = store.take_unreferenced_blobs(f.now(), 100).unwrap();
    taken.sort();
    assert_eq!(
        taken,
        vec![key(1), key(101)],
        "old's file and thumbnail only"
    );
    assert_eq!(
        store.take_unreferenced_blobs(f.now(), 100).unwrap(),
        vec![],
        "taken once"
    );
    // A blob touched again is a new record.
    store.touch_blob(&key(1), 100, f.now()).unwrap();
    assert_eq!(
        store.take_unreferenced_blobs(f.now(), 100).unwrap(),
        vec![key(1)]
    );
}

pub fn the_quota_counts_the_uploaders_stored_uploads<S: Stores + ?Sized>(store: &S) {
    let f = Fixture::new(store);
    let (alice, bob) = (f.user("alice"), f.user("bob"));
    upload(&f, alice, 1, 600);
    upload(&f, bob, 1, 900);
    assert_eq!(store.used_bytes(alice).unwrap(), 600);
    let mut next = upload_row(&f, alice, 500);
    assert!(
        !store.insert_upload(&next, 1000).unwrap(),
        "600 + 500 > 1000"
    );
    assert_eq!(store.find_upload(next.id).unwrap(), None);
    next.size = 400;
    assert!(
        store.insert_upload(&next, 1000).unwrap(),
        "600 + 400 = 1000"
    );
    assert_eq!(store.used_bytes(alice).unwrap(), 1000);
    assert_eq!(store.used_bytes(bob).unwrap(), 900);
}

fn upload_row<S: Stores + ?Sized>(f: &Fixture<'_, S>, uploader: UserId, size: u64) -> Attachment {
    Attachment {
        id: AttachmentId::new(),
        uploader_id: uploader,
        name: FileName::parse("notes.txt"),
        size,
        content_type: "text/plain".into(),
        blob_key: key(9),
        width: None,
        height: None,
        thumbnail: None,
        created_at: f.now(),
        message_id: None,
        conversation_id: None,
    }
}
