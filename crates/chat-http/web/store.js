// What the client knows: the inbox, the open conversation's messages, who is typing and who
// is online. Plain data and the rules to update it from REST answers and live frames; the
// page is drawn from it by ui.js.

/** How long a typing indicator lasts without a refresh (the server never says "stopped"). */
export const TYPING_LAPSES_MS = 6000;

/**
 * Where my unsent messages wait across reloads and closed tabs: one storage entry each
 * (`chatd.unsent.<user id>.<client_message_id>`), so that two tabs never overwrite each
 * other's. A tab that finds another tab's message sends it too; the shared
 * client_message_id keeps it from being stored twice.
 */
const UNSENT = 'chatd.unsent.';

export class Store {
  /** `storage` (localStorage) keeps unsent messages across reloads; without it they live in memory. */
  constructor(me, storage = null) {
    this.me = me;
    /** Conversation id -> the inbox's summary (with `participants`, `unread_count`, ...). */
    this.conversations = new Map();
    /** User id -> username, from every participant list seen. */
    this.usernames = new Map([[me.user_id, me.username]]);
    /** User id -> {status, last_seen_at}. */
    this.presence = new Map();
    /** The open conversation, or null. */
    this.open = null;
    /** Conversation id -> Map(user id -> time the indicator lapses). */
    this.typing = new Map();
    /**
     * client_message_id -> a message of mine not confirmed by the server yet, in any
     * conversation: it is sent again (same id, so never stored twice) after a reconnect.
     */
    this.pending = new Map();
    this.storage = storage;
    for (const pending of this.storedUnsent()) this.pending.set(pending.client_message_id, pending);
  }

  // ---- My unsent messages --------------------------------------------------------------

  /** Adds or updates one of my unconfirmed messages; once ready to send, it outlives the page. */
  keepPending(pending) {
    this.pending.set(pending.client_message_id, pending);
    if (!pending.ready || !this.storage) return;
    try {
      this.storage.setItem(this.unsentPrefix() + pending.client_message_id, JSON.stringify(pending));
    } catch {
      // Storage full or turned off: it still waits in memory while the page is open.
    }
  }

  /** One of my messages is confirmed (or discarded): it is forgotten here and in storage. */
  dropPending(clientMessageId) {
    this.pending.delete(clientMessageId);
    if (this.storage) this.storage.removeItem(this.unsentPrefix() + clientMessageId);
  }

  /** Logging out: nothing I wrote is left behind for the next person at this computer. */
  forgetPending() {
    this.pending.clear();
    for (const key of this.unsentKeys()) this.storage.removeItem(key);
  }

  unsentPrefix() {
    return `${UNSENT}${this.me.user_id}.`;
  }

  unsentKeys() {
    if (!this.storage) return [];
    const keys = [];
    for (let i = 0; i < this.storage.length; i++) {
      const key = this.storage.key(i);
      if (key && key.startsWith(this.unsentPrefix())) keys.push(key);
    }
    return keys;
  }

  /** What earlier pages left unsent, in the order it was written. */
  storedUnsent() {
    const found = [];
    for (const key of this.unsentKeys()) {
      try {
        const p = JSON.parse(this.storage.getItem(key));
        if (p && typeof p.client_message_id === 'string' && typeof p.conversation_id === 'string' && typeof p.content === 'string') {
          found.push({ ...p, ready: true });
        }
      } catch {
        this.storage.removeItem(key); // Not something this client wrote: drop it.
      }
    }
    return found.sort((a, b) => (a.queued_at || 0) - (b.queued_at || 0));
  }

  setInbox(list) {
    const next = new Map();
    for (const summary of list) {
      const old = this.conversations.get(summary.id);
      const merged = { ...old, ...summary };
      // Live frames that came while the list was on its way are newer than it: keep the
      // last message and the counts they brought.
      const seq = (c) => (c && c.last_message ? c.last_message.seq : 0);
      if (old && seq(old) > seq(summary)) {
        for (const key of ['last_message', 'unread_count', 'unread_mentions', 'last_activity_at']) merged[key] = old[key];
      }
      next.set(summary.id, merged);
      this.learnParticipants(summary.participants);
    }
    this.conversations = next;
  }

  /** Replaces what is known of one conversation (a GET /conversations/{id} answer). */
  setConversation(conversation) {
    const old = this.conversations.get(conversation.id) || {
      unread_count: 0,
      unread_mentions: 0,
      last_message: null,
      last_activity_at: conversation.updated_at,
    };
    this.conversations.set(conversation.id, { ...old, ...conversation });
    this.learnParticipants(conversation.participants);
  }

  learnParticipants(participants) {
    for (const p of participants || []) this.usernames.set(p.id, p.username);
  }

  /** The inbox, most recent activity first. */
  inbox() {
    return [...this.conversations.values()].sort((a, b) =>
      String(b.last_activity_at).localeCompare(String(a.last_activity_at)));
  }

  /** The other member of a direct conversation, or null for a group. */
  otherMember(conversation) {
    if (!conversation || conversation.is_group) return null;
    return (conversation.participants || []).find((p) => p.id !== this.me.user_id) || null;
  }

  title(conversation) {
    if (!conversation) return '';
    if (conversation.name) return conversation.name;
    const others = (conversation.participants || []).filter((p) => p.id !== this.me.user_id);
    return others.map((p) => p.username).join(', ') || 'Just you';
  }

  username(id) {
    return this.usernames.get(id) || 'someone';
  }

  /** Opens a conversation with its latest page of history (ascending seq). */
  openConversation(id, page, pageSize) {
    // Reopening the open conversation keeps what live frames brought after the page was read.
    const newest = page.length ? page[page.length - 1].seq : 0;
    const later = this.open && this.open.id === id
      ? [...this.open.messages.values()].filter((m) => m.seq > newest)
      : [];
    this.open = {
      id,
      messages: new Map(),
      hasOlder: page.length === pageSize,
    };
    this.addMessages(page);
    this.addMessages(later);
  }

  /** The seq of the newest message shown in the open conversation, 0 when none. */
  newestSeq() {
    const list = this.ordered();
    return list.length ? list[list.length - 1].seq : 0;
  }

  addOlder(page, pageSize) {
    this.open.hasOlder = page.length === pageSize;
    this.addMessages(page);
  }

  addMessages(messages) {
    for (const m of messages) {
      if (!m.thread_root_id) this.open.messages.set(m.id, m);
    }
  }

  /** The open conversation's messages in seq order. */
  ordered() {
    return this.open ? [...this.open.messages.values()].sort((a, b) => a.seq - b.seq) : [];
  }

  oldestSeq() {
    const list = this.ordered();
    return list.length ? list[0].seq : null;
  }

  /**
   * Applies a message that was stored or changed (new_message, message_updated,
   * message_deleted). Answers whether it belongs to the open conversation's history.
   */
  applyMessage(message, isNew) {
    const conversation = this.conversations.get(message.conversation_id);
    if (conversation && !message.thread_root_id) {
      const last = conversation.last_message;
      if (!last || last.seq <= message.seq) {
        conversation.last_message = message.deleted_at ? { ...message, content: null } : message;
      }
      if (isNew) {
        conversation.last_activity_at = message.created_at;
        const mine = message.sender_id === this.me.user_id;
        const viewing = this.open && this.open.id === message.conversation_id && !document.hidden;
        const known = this.open && this.open.id === message.conversation_id && this.open.messages.has(message.id);
        if (!mine && !viewing && !known) {
          conversation.unread_count = (conversation.unread_count || 0) + 1;
          if ((message.mentions || []).includes(this.me.user_id)) {
            conversation.unread_mentions = (conversation.unread_mentions || 0) + 1;
          }
        }
        if (mine) this.moveReadMarker(conversation, this.me.user_id, message.seq);
      }
    }
    // Replies quote their parent as it now stands.
    if (this.open && message.conversation_id === this.open.id) {
      for (const m of this.open.messages.values()) {
        if (m.reply_to && m.reply_to.id === message.id) {
          const snippet = message.content === null ? null : [...message.content].slice(0, 100).join('');
          this.open.messages.set(m.id, { ...m, reply_to: { ...m.reply_to, snippet } });
        }
      }
    }
    if (message.client_message_id && message.sender_id === this.me.user_id) {
      this.dropPending(message.client_message_id);
    }
    if (!this.open || message.conversation_id !== this.open.id || message.thread_root_id) return false;
    this.open.messages.set(message.id, message);
    return true;
  }

  /** My unconfirmed messages in the open conversation. */
  pendingHere() {
    return [...this.pending.values()].filter((p) => this.open && p.conversation_id === this.open.id);
  }

  hideMessage(conversationId, messageId) {
    if (this.open && this.open.id === conversationId) this.open.messages.delete(messageId);
  }

  /** A reaction_added / reaction_removed frame: the emoji's new count, and whether it is mine. */
  applyReaction(frame, added) {
    if (!this.open || frame.conversation_id !== this.open.id) return null;
    const message = this.open.messages.get(frame.message_id);
    if (!message) return null;
    const reactions = (message.reactions || []).map((r) => ({ ...r }));
    let entry = reactions.find((r) => r.emoji === frame.emoji);
    if (!entry) {
      entry = { emoji: frame.emoji, count: 0, me: false };
      reactions.push(entry);
    }
    entry.count = frame.count;
    if (frame.user_id === this.me.user_id) entry.me = added;
    const changed = { ...message, reactions: reactions.filter((r) => r.count > 0) };
    this.open.messages.set(changed.id, changed);
    return changed;
  }

  moveReadMarker(conversation, userId, seq) {
    const p = (conversation.participants || []).find((x) => x.id === userId);
    if (p && seq > (p.last_read_seq || 0)) p.last_read_seq = seq;
  }

  moveDelivered(conversation, userId, seq) {
    const p = (conversation.participants || []).find((x) => x.id === userId);
    if (p && seq > (p.last_delivered_seq || 0)) p.last_delivered_seq = seq;
  }

  /** `sent`, `delivered` or `read`: how far one of my messages has reached the others. */
  ticks(message) {
    const conversation = this.conversations.get(message.conversation_id);
    const others = ((conversation && conversation.participants) || []).filter((p) => p.id !== this.me.user_id);
    if (!others.length) return message.is_read ? 'read' : 'sent';
    const read = (p) => (p.last_read_seq || 0) >= message.seq;
    if (message.is_read || others.every(read)) return 'read';
    const delivered = (p) => Math.max(p.last_delivered_seq || 0, p.last_read_seq || 0) >= message.seq;
    return others.every(delivered) ? 'delivered' : 'sent';
  }

  /** The newest message of the open conversation that is not mine, if I have not read it. */
  unreadTail() {
    const conversation = this.open && this.conversations.get(this.open.id);
    if (!conversation) return null;
    const list = this.ordered();
    const last = list[list.length - 1];
    if (!last) return null;
    const mine = (conversation.participants || []).find((p) => p.id === this.me.user_id);
    const marker = mine ? mine.last_read_seq || 0 : 0;
    return last.seq > marker || conversation.unread_count > 0 ? last : null;
  }

  typingIn(conversationId, now) {
    const users = this.typing.get(conversationId);
    if (!users) return [];
    const names = [];
    for (const [id, until] of users) {
      if (until > now) names.push(this.username(id));
      else users.delete(id);
    }
    return names;
  }

  setTyping(frame, now) {
    if (!this.typing.has(frame.conversation_id)) this.typing.set(frame.conversation_id, new Map());
    const users = this.typing.get(frame.conversation_id);
    if (frame.is_typing === false) users.delete(frame.user_id);
    else users.set(frame.user_id, now + TYPING_LAPSES_MS);
  }
}
