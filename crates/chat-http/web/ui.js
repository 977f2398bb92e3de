// Drawing the page from the store. Every text a user wrote goes in with `textContent`, never
// as HTML, so a message cannot inject markup or script.

/** The reactions offered by the picker. */
export const EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];

/** `el('button', {type: 'button', dataset: {action: 'x'}}, 'text', child)` */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'className') node.className = value;
    else if (key === 'hidden') node.hidden = true;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

export const $ = (selector) => document.querySelector(selector);

export function setConnection(state) {
  const node = $('#connection');
  node.dataset.state = state;
  node.textContent = { online: 'Online', connecting: 'Connecting…', offline: 'Offline' }[state];
}

let toastTimer = null;
/** Shows an error (or any short note) for a few seconds. */
export function toast(text) {
  const node = $('#toast');
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    node.hidden = true;
  }, 5000);
}

export function time(iso) {
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' +
      date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** "5 minutes ago" and the like, for last-seen times. */
export function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  const format = new Intl.RelativeTimeFormat([], { numeric: 'auto' });
  if (seconds < 60) return format.format(-Math.round(seconds), 'second');
  if (seconds < 3600) return format.format(-Math.round(seconds / 60), 'minute');
  if (seconds < 86400) return format.format(-Math.round(seconds / 3600), 'hour');
  return format.format(-Math.round(seconds / 86400), 'day');
}

export function presenceText(presence) {
  if (!presence) return '';
  if (presence.status === 'online') return 'online';
  if (presence.status === 'away') return 'away';
  return presence.last_seen_at ? 'last seen ' + ago(presence.last_seen_at) : 'offline';
}

function preview(store, conversation) {
  const message = conversation.last_message;
  if (!message) return 'No messages yet';
  if (message.content === null) return 'Message deleted';
  const mine = message.sender_id === store.me.user_id;
  const who = mine ? 'You: ' : conversation.is_group ? store.username(message.sender_id) + ': ' : '';
  const files = (message.attachments || []).length ? '[file] ' : '';
  return who + files + (message.content || '');
}

export function renderInbox(store, activeId) {
  const list = $('#inbox');
  const items = store.inbox().map((c) => {
    const other = store.otherMember(c);
    const presence = other ? store.presence.get(other.id) : null;
    const typing = store.typingIn(c.id, Date.now());
    return el('li', {
      className: 'conversation' + (c.id === activeId ? ' active' : ''),
      dataset: { conversationId: c.id },
      tabindex: '0',
      role: 'button',
    },
    el('span', {
      className: 'avatar',
      dataset: { status: presence ? presence.status : '' },
    }, store.title(c).slice(0, 1).toUpperCase()),
    el('span', { className: 'conversation-text' },
      el('span', { className: 'title' }, store.title(c)),
      typing.length
        ? el('span', { className: 'last-message typing' }, typing.length === 1 ? typing[0] + ' is typing…' : 'several people are typing…')
        : el('span', { className: 'last-message' }, preview(store, c))),
    el('span', { className: 'badges' },
      c.unread_mentions > 0 ? el('span', { className: 'mention-badge', title: 'Mentions you' }, '@' + c.unread_mentions) : null,
      c.unread_count > 0 ? el('span', { className: 'unread-badge', title: 'Unread' }, String(c.unread_count)) : null));
  });
  // Items keep their elements (only what changed inside is redrawn), so a click aimed at one
  // never lands on an element the next event replaced.
  const existing = new Map();
  for (const node of list.querySelectorAll('.conversation')) existing.set(node.dataset.conversationId, node);
  const kept = items.map((item) => {
    const old = existing.get(item.dataset.conversationId);
    if (!old) return item;
    if (old.className !== item.className) old.className = item.className;
    if (old.innerHTML !== item.innerHTML) old.replaceChildren(...item.childNodes);
    return old;
  });
  if (!kept.length) {
    list.replaceChildren(el('li', { className: 'inbox-empty' }, 'No conversations yet. Start one with “New”.'));
    return;
  }
  const same = kept.length === list.children.length && kept.every((node, i) => list.children[i] === node);
  if (!same) list.replaceChildren(...kept);
}

/**
 * One message as an element. `blobUrl(attachment, thumbnail)` answers a promise of an object
 * URL for an image (fetched with the bearer token).
 */
export function messageElement(store, message, blobUrl) {
  const mine = message.sender_id === store.me.user_id;
  const deleted = message.content === null;
  const node = el('article', {
    className: 'message' + (mine ? ' mine' : '') + (deleted ? ' deleted' : ''),
    dataset: { messageId: message.id, seq: String(message.seq) },
  });
  node.append(el('div', { className: 'meta' },
    el('span', { className: 'author' }, store.username(message.sender_id)),
    el('time', { datetime: message.created_at }, time(message.created_at)),
    message.edited_at && !deleted ? el('span', { className: 'edited', title: 'Edited ' + time(message.edited_at) }, 'edited') : null));
  if (message.reply_to && !deleted) {
    node.append(el('blockquote', { className: 'reply-to', dataset: { messageId: message.reply_to.id } },
      el('span', { className: 'reply-author' }, store.username(message.reply_to.sender_id)),
      el('span', { className: 'reply-snippet' }, message.reply_to.snippet === null ? 'Message deleted' : message.reply_to.snippet)));
  }
  node.append(el('div', { className: 'content' }, ...(deleted ? ['This message was deleted'] : linked(message.content))));
  if (!deleted && (message.attachments || []).length) {
    node.append(el('div', { className: 'attachments' }, ...message.attachments.map((a) => attachmentElement(a, blobUrl))));
  }
  const reactions = el('div', { className: 'reactions' },
    ...(message.reactions || []).map((r) => el('button', {
      type: 'button',
      className: 'reaction' + (r.me ? ' me' : ''),
      dataset: { action: 'toggle-reaction', emoji: r.emoji },
      title: r.me ? 'Take back your reaction' : 'React',
    }, r.emoji + ' ' + r.count)));
  node.append(reactions);
  const footer = el('div', { className: 'footer' });
  if (!deleted) {
    footer.append(el('span', { className: 'actions' },
      el('button', { type: 'button', dataset: { action: 'reply' }, title: 'Reply' }, 'Reply'),
      el('button', { type: 'button', dataset: { action: 'react' }, title: 'React' }, 'React'),
      mine ? el('button', { type: 'button', dataset: { action: 'edit' }, title: 'Edit' }, 'Edit') : null,
      mine ? el('button', { type: 'button', dataset: { action: 'delete' }, title: 'Delete for everyone' }, 'Delete') : null));
  }
  if (mine && !deleted) footer.append(ticksElement(store.ticks(message)));
  node.append(footer);
  node.shown = message;
  return node;
}

export function ticksElement(state) {
  const label = { sent: 'Sent', delivered: 'Delivered', read: 'Read' }[state];
  return el('span', { className: 'ticks', dataset: { state }, title: label, 'aria-label': label }, state === 'sent' ? '✓' : '✓✓');
}

function attachmentElement(attachment, blobUrl) {
  if (IMAGE_TYPES.includes(attachment.content_type)) {
    // Sized before it loads, so the conversation does not jump when the bytes arrive.
    const scale = attachment.width && attachment.height
      ? Math.min(1, 320 / attachment.width, 240 / attachment.height)
      : null;
    const img = el('img', {
      className: 'attachment-preview',
      alt: attachment.name,
      width: scale ? String(Math.round(attachment.width * scale)) : null,
      height: scale ? String(Math.round(attachment.height * scale)) : null,
    });
    blobUrl(attachment, true).then((url) => {
      img.src = url;
    }, () => {
      img.alt = attachment.name + ' (could not be loaded)';
    });
    const link = el('a', { className: 'attachment-image', href: '#', dataset: { attachmentId: attachment.id, name: attachment.name } }, img);
    return link;
  }
  return el('a', {
    className: 'attachment-file',
    href: '#',
    dataset: { attachmentId: attachment.id, name: attachment.name },
  }, el('span', { className: 'file-name' }, attachment.name), el('span', { className: 'file-size' }, size(attachment.size)));
}

function size(bytes) {
  if (bytes < 1024) return bytes + ' B';
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + ' KB';
  return (bytes / 1024 / 1024).toFixed(1) + ' MB';
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

/** Text with its http(s) addresses as links (opened in a new tab, without an opener). */
function linked(text) {
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    parts.push(text.slice(at, match.index));
    parts.push(el('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer' }, match[0]));
    at = match.index + match[0].length;
  }
  parts.push(text.slice(at));
  return parts.filter((p) => p !== '');
}

/** A message of mine the server has not confirmed yet. */
export function pendingElement(store, pending) {
  return el('article', {
    className: 'message mine pending' + (pending.failed ? ' failed' : ''),
    dataset: { clientMessageId: pending.client_message_id },
  },
  el('div', { className: 'meta' }, el('span', { className: 'author' }, store.me.username)),
  el('div', { className: 'content' }, pending.content),
  el('div', { className: 'footer' },
    pending.failed
      ? el('span', { className: 'send-error' }, pending.failed + ' ',
        el('button', { type: 'button', dataset: { action: 'retry' } }, 'Retry'),
        el('button', { type: 'button', dataset: { action: 'discard' } }, 'Discard'))
      : el('span', { className: 'sending' }, 'sending…')));
}

/** Redraws the open conversation's messages, keeping the reader's place. */
export function renderMessages(store, blobUrl) {
  const container = $('#messages');
  const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
  const older = container.querySelector('[data-action=load-older]');
  older.hidden = !store.open.hasOlder;
  // A message that has not changed keeps its element (and an edit or picker open in it).
  const existing = new Map();
  for (const node of container.querySelectorAll('.message[data-message-id]')) existing.set(node.dataset.messageId, node);
  const nodes = store.ordered().map((m) => {
    const old = existing.get(m.id);
    return old && old.shown === m ? old : messageElement(store, m, blobUrl);
  });
  for (const pending of store.pendingHere()) nodes.push(pendingElement(store, pending));
  const anchor = nearBottom ? null : firstVisible(container);
  const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
  container.replaceChildren(older, ...nodes);
  renderTicks(store);
  if (nearBottom) {
    container.scrollTop = container.scrollHeight;
  } else if (anchor) {
    const again = container.querySelector(`[data-message-id="${anchor.dataset.messageId}"]`);
    if (again) container.scrollTop += again.getBoundingClientRect().top - anchorTop;
  }
}

function firstVisible(container) {
  const top = container.getBoundingClientRect().top;
  for (const node of container.querySelectorAll('.message[data-message-id]')) {
    if (node.getBoundingClientRect().bottom > top) return node;
  }
  return null;
}

/** Replaces one message's element in place (an edit, a reaction, new ticks). */
export function rerenderMessage(store, message, blobUrl) {
  const old = document.querySelector(`#messages .message[data-message-id="${message.id}"]`);
  if (old) old.replaceWith(messageElement(store, message, blobUrl));
}

export function renderTicks(store) {
  for (const node of document.querySelectorAll('#messages .message.mine[data-message-id]')) {
    const message = store.open && store.open.messages.get(node.dataset.messageId);
    const ticks = node.querySelector('.ticks');
    if (!message || !ticks) continue;
    const state = store.ticks(message);
    if (ticks.dataset.state !== state) {
      const fresh = ticksElement(state);
      ticks.dataset.state = state;
      ticks.textContent = fresh.textContent;
      ticks.title = fresh.title;
      ticks.setAttribute('aria-label', fresh.title);
    }
  }
}

export function renderTyping(names) {
  const node = $('#typing');
  let text = '';
  if (names.length === 1) text = names[0] + ' is typing…';
  else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing…';
  else if (names.length > 2) text = 'Several people are typing…';
  if (node.textContent !== text) node.textContent = text;
}

export function renderPresence(store) {
  const node = $('#presence');
  const conversation = store.open && store.conversations.get(store.open.id);
  const other = store.otherMember(conversation);
  if (!other) {
    node.hidden = true;
    return;
  }
  const presence = store.presence.get(other.id) || { status: 'offline', last_seen_at: null };
  node.hidden = false;
  node.dataset.status = presence.status;
  node.textContent = presenceText(presence);
}

export function renderSearch(store, hits) {
  const node = $('#search-results');
  node.hidden = false;
  node.replaceChildren(
    el('div', { className: 'search-header' },
      el('span', {}, hits.length ? hits.length + ' result' + (hits.length === 1 ? '' : 's') : 'No messages found'),
      el('button', { type: 'button', dataset: { action: 'close-search' } }, 'Close')),
    ...hits.map((hit) => el('button', {
      type: 'button',
      className: 'search-result',
      dataset: { conversationId: hit.message.conversation_id, messageId: hit.message.id, seq: String(hit.message.seq) },
    },
    el('span', { className: 'search-where' },
      store.title(store.conversations.get(hit.message.conversation_id)) + ' · ' + store.username(hit.message.sender_id) + ' · ' + time(hit.message.created_at)),
    highlighted(hit.snippet, hit.highlights))));
}

function highlighted(snippet, ranges) {
  // `highlights` are character ranges (code points) of the snippet that matched.
  const chars = [...snippet];
  const node = el('span', { className: 'search-snippet' });
  let at = 0;
  for (const [start, end] of ranges || []) {
    if (start < at) continue;
    node.append(chars.slice(at, start).join(''), el('mark', {}, chars.slice(start, end).join('')));
    at = end;
  }
  node.append(chars.slice(at).join(''));
  return node;
}

/** The reaction picker shown under a message. */
export function pickerElement() {
  return el('div', { className: 'picker' },
    ...EMOJI.map((emoji) => el('button', { type: 'button', dataset: { action: 'pick-reaction', emoji }, title: 'React with ' + emoji }, emoji)));
}
