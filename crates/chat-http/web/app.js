// The web client's entry point: wires the REST API, the live socket, the store and the page.

import { Api, PAGE } from './api.js';
import { Socket } from './socket.js';
import { Store } from './store.js';
import { $, el, pickerElement, renderInbox, renderMessages, renderPresence, renderSearch, renderTicks, renderTyping, rerenderMessage, setConnection, toast } from './ui.js';

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;

let store = null;
let reply = null; // The message the composer replies to.
let staged = []; // Files picked for the next message: {file, attachment?}.
let typingSentAt = 0;
let opening = 0; // The latest conversation asked for: an older answer arriving late is dropped.
let atBottom = true; // Whether the reader is at the end of the conversation.
let typingIdle = null;
let typingFor = null; // The conversation the last is_typing:true went to: its stop goes there.
const blobs = new Map(); // attachment id (+ variant) -> promise of an object URL

const api = new Api(() => showAuth('Your session has ended; log in again.'));
const socket = new Socket(api, {
  state: setConnection,
  connected: onConnected,
  frame: onFrame,
  unauthorized: () => {
    socket.stop();
    showAuth('Your session has ended; log in again.');
  },
});

// ---- Signing in and out ------------------------------------------------------------------

function showAuth(message) {
  socket.stop();
  store = null;
  for (const url of blobs.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
  blobs.clear();
  $('#app').hidden = true;
  $('#auth').hidden = false;
  $('[data-action=logout]').hidden = true;
  $('#whoami').textContent = '';
  $('#auth-error').textContent = message || '';
  setConnection('offline');
}

function showApp(session) {
  store = new Store(session, localStorage);
  $('#auth').hidden = true;
  $('#app').hidden = false;
  $('[data-action=logout]').hidden = false;
  $('#whoami').textContent = session.username;
  $('#conversation').hidden = true;
  $('#empty').hidden = false;
  renderInbox(store, null);
  socket.start();
  restoreOpen();
}

/** After a reload, the conversation that was open is opened again (read from the server). */
async function restoreOpen() {
  const id = sessionStorage.getItem('chatd.open');
  await loadInbox();
  if (id && store && !store.open && store.conversations.has(id)) openConversation(id);
}

async function authenticate(signup) {
  const form = $('#auth-form');
  const username = form.elements.username.value.trim();
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  const error = $('#auth-error');
  error.textContent = '';
  if (!username || !password || (signup && !email)) {
    error.textContent = signup ? 'Username, email and password are needed to sign up.' : 'Enter your username and password.';
    return;
  }
  for (const button of form.querySelectorAll('button')) button.disabled = true;
  try {
    if (signup) await api.signup(username, email, password);
    const session = await api.login(username, password);
    form.elements.password.value = '';
    showApp(session);
  } catch (e) {
    error.textContent = e.message;
  } finally {
    for (const button of form.querySelectorAll('button')) button.disabled = false;
  }
}

$('#auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  authenticate(false);
});
$('[data-action=signup]').addEventListener('click', () => authenticate(true));
$('[data-action=logout]').addEventListener('click', async () => {
  socket.stop();
  if (store) store.forgetPending();
  await api.logout();
  showAuth('');
});

// Another tab logged out (or in as someone else): follow it.
window.addEventListener('storage', (event) => {
  if (event.key !== 'chatd.session') return;
  const session = api.session;
  if (!session && store) showAuth('');
  else if (session && (!store || store.me.user_id !== session.user_id)) showApp(session);
});

// ---- Live events -------------------------------------------------------------------------

async function onConnected(frame, first) {
  // On the first connection the history is read over REST (the socket has queued every event
  // from just before `connected`); after a reconnect, `sync` replays what was missed and the
  // inbox and presence are read again for the counts and statuses that are not replayed.
  await loadInbox();
  if (first && store && store.open) await openConversation(store.open.id);
  resendPending();
  refreshPresence();
  // An away tab is said so by the socket itself, on `connected`.
}

function onFrame(frame) {
  if (!store) return;
  switch (frame.type) {
    case 'new_message':
    case 'message_updated':
    case 'message_deleted':
      applyMessage(frame.message, frame.type === 'new_message');
      break;
    case 'message_hidden':
      store.hideMessage(frame.conversation_id, frame.message_id);
      if (isOpen(frame.conversation_id)) draw();
      inboxSoon();
      break;
    case 'message_read': {
      const conversation = store.conversations.get(frame.conversation_id);
      if (!conversation) break;
      store.moveReadMarker(conversation, frame.user_id, frame.last_read_seq);
      if (frame.user_id === store.me.user_id) inboxSoon();
      if (isOpen(frame.conversation_id)) renderTicks(store);
      break;
    }
    case 'message_delivered': {
      const conversation = store.conversations.get(frame.conversation_id);
      if (!conversation) break;
      store.moveDelivered(conversation, frame.user_id, frame.last_delivered_seq);
      if (isOpen(frame.conversation_id)) renderTicks(store);
      break;
    }
    case 'read_marker_updated': {
      const conversation = store.conversations.get(frame.conversation_id);
      if (!conversation) break;
      conversation.unread_count = frame.unread_count;
      conversation.unread_mentions = frame.unread_mentions;
      const me = (conversation.participants || []).find((p) => p.id === store.me.user_id);
      if (me) me.last_read_seq = frame.last_read_seq;
      renderInbox(store, openId());
      break;
    }
    case 'reaction_added':
    case 'reaction_removed': {
      const message = store.applyReaction(frame, frame.type === 'reaction_added');
      if (message) rerenderMessage(store, message, blobUrl);
      break;
    }
    case 'conversation_updated':
      if (frame.change === 'member_removed' && (frame.user_ids || []).includes(store.me.user_id)) {
        store.conversations.delete(frame.conversation_id);
        if (isOpen(frame.conversation_id)) closeConversation();
        renderInbox(store, openId());
      } else if (frame.conversation) {
        store.setConversation(frame.conversation);
        renderInbox(store, openId());
      } else {
        inboxSoon();
      }
      break;
    case 'conversation_settings_updated':
    case 'synced':
      // The replay may have counted what the inbox read at `connected` already counted.
      inboxSoon();
      break;
    case 'user_typing':
      store.setTyping(frame, Date.now());
      drawTyping();
      break;
    case 'presence':
      store.presence.set(frame.user_id, { status: frame.status, last_seen_at: frame.last_seen_at });
      renderPresence(store);
      renderInbox(store, openId());
      break;
    case 'error':
      onSocketError(frame);
      break;
    default:
      break;
  }
}

function applyMessage(message, isNew) {
  const inView = store.applyMessage(message, isNew);
  if (isNew && message.sender_id !== store.me.user_id) {
    // A new message ends its sender's typing.
    store.setTyping({ conversation_id: message.conversation_id, user_id: message.sender_id, is_typing: false }, Date.now());
    drawTyping();
  }
  if (!store.conversations.has(message.conversation_id)) inboxSoon();
  renderInbox(store, openId());
  if (inView) {
    draw();
    markReadSoon();
  }
}

function onSocketError(frame) {
  // A send that was refused: its pending message says why.
  if (frame.ref && store.pending.has(frame.ref)) {
    store.keepPending({ ...store.pending.get(frame.ref), failed: frame.detail });
    draw();
    return;
  }
  if (frame.code !== 'rate_limited' || !String(frame.ref || '').startsWith('typing')) toast(frame.detail);
}

// ---- The inbox ---------------------------------------------------------------------------

async function loadInbox() {
  if (!store) return;
  // Logged out, or in as someone else, while the inbox came: it is not this store's.
  const asked = store;
  try {
    const inbox = await api.inbox();
    if (store !== asked) return;
    store.setInbox(inbox);
    renderInbox(store, openId());
    // A conversation someone else started brings a partner whose presence is not known yet.
    const unknown = [...store.conversations.values()].map((c) => store.otherMember(c))
      .some((other) => other && !store.presence.has(other.id));
    if (unknown) refreshPresence();
  } catch (e) {
    if (e.status !== 401 && store === asked) toast(e.message);
  }
}

let inboxTimer = null;
/** Reads the inbox again shortly (several frames in a row read it once). */
function inboxSoon() {
  clearTimeout(inboxTimer);
  inboxTimer = setTimeout(loadInbox, 300);
}

async function refreshPresence() {
  if (!store) return;
  const ids = new Set();
  for (const c of store.conversations.values()) {
    const other = store.otherMember(c);
    if (other) ids.add(other.id);
  }
  if (!ids.size) return;
  const asked = store;
  try {
    const statuses = await api.presence([...ids].slice(0, 200));
    if (store !== asked) return;
    for (const p of statuses) store.presence.set(p.user_id, p);
    renderPresence(store);
    renderInbox(store, openId());
  } catch {
    // Presence is a nicety: the next `presence` frame brings it.
  }
}

$('#inbox').addEventListener('click', (event) => {
  const item = event.target.closest('.conversation');
  if (item) openConversation(item.dataset.conversationId);
});
$('#inbox').addEventListener('keydown', (event) => {
  const item = event.target.closest('.conversation');
  if (item && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();
    openConversation(item.dataset.conversationId);
  }
});

// New conversations: members by username, comma separated.
const newForm = $('#new-conversation');
$('[data-action=new-conversation]').addEventListener('click', () => {
  newForm.hidden = !newForm.hidden;
  if (!newForm.hidden) newForm.elements.members.focus();
});
$('[data-action=cancel-conversation]').addEventListener('click', () => {
  newForm.hidden = true;
});
newForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = newForm.querySelector('.form-error');
  error.textContent = '';
  const names = newForm.elements.members.value.split(',').map((n) => n.trim()).filter(Boolean);
  const title = newForm.elements.title.value.trim();
  if (!names.length) {
    error.textContent = 'Name at least one member.';
    return;
  }
  try {
    const ids = [];
    for (const name of names) {
      const found = (await api.findUsers(name)).find((u) => u.username.toLowerCase() === name.toLowerCase());
      if (!found) throw new Error('No user is called ' + name + '.');
      store.usernames.set(found.id, found.username);
      if (found.id !== store.me.user_id) ids.push(found.id);
    }
    if (!ids.length) throw new Error('Name someone other than yourself.');
    const conversation = await api.createConversation(ids, title || (ids.length > 1 ? names.join(', ') : null));
    store.setConversation(conversation);
    newForm.reset();
    newForm.hidden = true;
    await loadInbox();
    await openConversation(conversation.id);
    refreshPresence();
  } catch (e) {
    error.textContent = e.message;
  }
});

// ---- A conversation ----------------------------------------------------------------------

function openId() {
  return store && store.open ? store.open.id : null;
}

function isOpen(id) {
  return openId() === id;
}

async function openConversation(id, focusMessageId) {
  if (!store) return;
  const switching = !isOpen(id);
  const ticket = ++opening;
  const asked = store;
  try {
    const [conversation, page] = await Promise.all([api.conversation(id), api.history(id)]);
    if (ticket !== opening || store !== asked) return;
    store.setConversation(conversation);
    store.openConversation(id, page, PAGE);
  } catch (e) {
    if (ticket === opening) toast(e.message);
    return;
  }
  if (switching) {
    // The typing went to the conversation left behind: it ends there now.
    stopTyping();
    reply = null;
    drawComposerContext();
  }
  sessionStorage.setItem('chatd.open', id);
  const section = $('#conversation');
  section.dataset.conversationId = id;
  section.hidden = false;
  $('#empty').hidden = true;
  document.body.classList.add('reading');
  section.querySelector('.conversation-title').textContent = store.title(store.conversations.get(id));
  draw();
  $('#messages').scrollTop = $('#messages').scrollHeight;
  atBottom = true;
  drawTyping();
  renderPresence(store);
  renderInbox(store, id);
  const other = store.otherMember(store.conversations.get(id));
  if (other && !store.presence.has(other.id)) refreshPresence();
  catchUp(id);
  if (focusMessageId) await reveal(focusMessageId);
  markReadSoon();
  if (switching) $('#composer').elements.content.focus();
}

/**
 * A message that arrived while the conversation's page was on its way is newer than the page:
 * the inbox knows of it, so the messages after the page are read too.
 */
async function catchUp(id) {
  const conversation = store.conversations.get(id);
  const last = conversation && conversation.last_message;
  if (!last || last.seq <= store.newestSeq()) return;
  try {
    const later = await api.historyAfter(id, store.newestSeq());
    if (!isOpen(id)) return;
    store.addMessages(later);
    draw();
    markReadSoon();
  } catch {
    // The next event or reload brings them.
  }
}

function closeConversation() {
  if (!store) return;
  // A conversation asked for before this is not opened when its answer comes late.
  opening++;
  stopTyping();
  store.open = null;
  sessionStorage.removeItem('chatd.open');
  $('#conversation').hidden = true;
  delete $('#conversation').dataset.conversationId;
  $('#empty').hidden = false;
  document.body.classList.remove('reading');
  renderInbox(store, null);
}

$('[data-action=back]').addEventListener('click', closeConversation);

function draw() {
  if (store && store.open) renderMessages(store, blobUrl);
}

async function loadOlder() {
  if (!store || !store.open || !store.open.hasOlder || store.open.loadingOlder) return;
  const id = store.open.id;
  store.open.loadingOlder = true;
  try {
    const page = await api.history(id, store.oldestSeq());
    if (isOpen(id)) {
      store.addOlder(page, PAGE);
      draw();
    }
  } catch (e) {
    toast(e.message);
  } finally {
    if (store && store.open) store.open.loadingOlder = false;
  }
}

/** Scrolls to a message, loading older pages until it is there (a search result). */
async function reveal(messageId) {
  // Stops if the user logs out, or in as someone else, while older pages come.
  const asked = store;
  for (let i = 0; i < 20 && store && store === asked && store.open && !store.open.messages.has(messageId) && store.open.hasOlder; i++) {
    await loadOlder();
  }
  if (!store || store !== asked) return;
  const node = document.querySelector(`#messages .message[data-message-id="${messageId}"]`);
  if (node) {
    node.scrollIntoView({ block: 'center' });
    node.classList.add('flash');
    setTimeout(() => node.classList.remove('flash'), 2000);
  }
}

$('#messages').addEventListener('scroll', () => {
  const box = $('#messages');
  atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  if (box.scrollTop < 40) loadOlder();
});
// An image without known dimensions grows the conversation when it loads: stay at the end.
$('#messages').addEventListener('load', () => {
  if (atBottom) $('#messages').scrollTop = $('#messages').scrollHeight;
}, true);

let readTimer = null;
/** Marks the open conversation read up to its newest message, while the page is seen. */
function markReadSoon() {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    if (!store || !store.open || document.hidden) return;
    const tail = store.unreadTail();
    if (!tail) return;
    const conversation = store.conversations.get(store.open.id);
    store.moveReadMarker(conversation, store.me.user_id, tail.seq);
    conversation.unread_count = 0;
    conversation.unread_mentions = 0;
    renderInbox(store, store.open.id);
    if (!socket.send({ type: 'mark_read', message_id: tail.id })) {
      api.markRead(tail.id).catch(() => {});
    }
  }, 150);
}

document.addEventListener('visibilitychange', () => {
  if (!store) return;
  socket.setAway(document.hidden);
  if (!document.hidden) markReadSoon();
});
window.addEventListener('focus', markReadSoon);

// Message actions.
$('#messages').addEventListener('click', async (event) => {
  const button = event.target.closest('[data-action], a[data-attachment-id], .reply-to');
  if (!button || !store || !store.open) return;
  const node = event.target.closest('.message');
  const message = node && node.dataset.messageId ? store.open.messages.get(node.dataset.messageId) : null;
  if (button.matches('a[data-attachment-id]')) {
    event.preventDefault();
    download(button.dataset.attachmentId, button.dataset.name);
    return;
  }
  if (button.matches('.reply-to')) {
    reveal(button.dataset.messageId);
    return;
  }
  const action = button.dataset.action;
  try {
    if (action === 'load-older') await loadOlder();
    else if (action === 'discard' && node) {
      store.dropPending(node.dataset.clientMessageId);
      draw();
    } else if (action === 'retry' && node) {
      const pending = store.pending.get(node.dataset.clientMessageId);
      if (pending) {
        const again = { ...pending, failed: null };
        store.keepPending(again);
        draw();
        sendPending(again);
      }
    } else if (!message) return;
    else if (action === 'reply') {
      reply = message;
      drawComposerContext();
      $('#composer').elements.content.focus();
    } else if (action === 'react') {
      const open = node.querySelector('.picker');
      if (open) open.remove();
      else node.querySelector('.reactions').after(pickerElement());
    } else if (action === 'pick-reaction') {
      button.closest('.picker').remove();
      const mine = (message.reactions || []).some((r) => r.emoji === button.dataset.emoji && r.me);
      if (!mine) await api.react(message.id, button.dataset.emoji, true);
    } else if (action === 'toggle-reaction') {
      const entry = (message.reactions || []).find((r) => r.emoji === button.dataset.emoji);
      await api.react(message.id, button.dataset.emoji, !(entry && entry.me));
    } else if (action === 'edit') {
      startEdit(node, message);
    } else if (action === 'delete') {
      await api.deleteMessage(message.id);
    }
  } catch (e) {
    toast(e.message);
  }
});

function startEdit(node, message) {
  const content = node.querySelector('.content');
  const box = el('textarea', { name: 'edit', rows: '2', 'aria-label': 'Edit message' });
  box.value = message.content;
  const form = el('form', { className: 'edit-form' }, box,
    el('div', { className: 'row' },
      el('button', { type: 'submit', dataset: { action: 'save-edit' } }, 'Save'),
      el('button', { type: 'button', className: 'secondary', dataset: { action: 'cancel-edit' } }, 'Cancel')));
  content.replaceWith(form);
  box.focus();
  const done = () => rerenderMessage(store, store.open.messages.get(message.id) || message, blobUrl);
  form.querySelector('[data-action=cancel-edit]').addEventListener('click', (event) => {
    event.stopPropagation();
    done();
  });
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === 'Escape') done();
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = box.value.trim();
    if (!text || text === message.content) {
      done();
      return;
    }
    try {
      const updated = await api.editMessage(message.id, text);
      applyMessage(updated, false);
    } catch (e) {
      toast(e.message);
    }
  });
}

function blobUrl(attachment, thumbnail) {
  const variant = thumbnail && attachment.thumbnail_url ? attachment.thumbnail_url : '/api/v1/attachments/' + attachment.id;
  if (!blobs.has(variant)) {
    const url = api.blob(variant).then((blob) => URL.createObjectURL(blob));
    url.catch(() => blobs.delete(variant));
    blobs.set(variant, url);
  }
  return blobs.get(variant);
}

async function download(id, name) {
  try {
    // Not through `blobs`: a downloaded file is not shown again, and the cache would keep its
    // bytes in memory until logout.
    const url = URL.createObjectURL(await api.blob('/api/v1/attachments/' + id));
    const link = el('a', { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    // Given up once the browser has had time to start saving it.
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    toast(e.message);
  }
}

// ---- The composer ------------------------------------------------------------------------

const composer = $('#composer');

function drawComposerContext() {
  const box = composer.querySelector('.composer-context');
  box.hidden = !reply;
  composer.querySelector('.composer-context-text').textContent = reply
    ? 'Replying to ' + store.username(reply.sender_id) + ': ' + (reply.content || '').slice(0, 80)
    : '';
  const files = composer.querySelector('.composer-files');
  files.replaceChildren(...staged.map((s, i) => el('span', { className: 'staged-file' },
    s.file.name + (s.attachment ? '' : ' (uploading…)'),
    el('button', { type: 'button', dataset: { action: 'unstage', index: String(i) }, title: 'Remove' }, '×'))));
}

composer.addEventListener('click', (event) => {
  const button = event.target.closest('[data-action]');
  if (!button) return;
  if (button.dataset.action === 'cancel-reply') {
    reply = null;
    drawComposerContext();
  } else if (button.dataset.action === 'unstage') {
    staged.splice(Number(button.dataset.index), 1);
    drawComposerContext();
  }
});

composer.elements.attachment.addEventListener('change', async () => {
  const input = composer.elements.attachment;
  const files = [...input.files];
  input.value = '';
  for (const file of files) {
    const entry = { file, attachment: null };
    entry.upload = api.upload(file).then((attachment) => {
      entry.attachment = attachment;
      drawComposerContext();
    }, (e) => {
      staged = staged.filter((s) => s !== entry);
      drawComposerContext();
      toast(file.name + ': ' + e.message);
    });
    staged.push(entry);
  }
  drawComposerContext();
});

composer.elements.content.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

composer.elements.content.addEventListener('input', () => {
  const box = composer.elements.content;
  box.style.height = 'auto';
  box.style.height = Math.min(box.scrollHeight, 160) + 'px';
  if (!store || !store.open) return;
  const now = Date.now();
  if (box.value.trim() && now - typingSentAt > TYPING_EVERY_MS) {
    typingSentAt = now;
    typingFor = store.open.id;
    socket.send({ type: 'typing', conversation_id: typingFor, is_typing: true, ref: 'typing' });
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
});

function stopTyping() {
  clearTimeout(typingIdle);
  const id = typingFor;
  typingSentAt = 0;
  typingFor = null;
  // Not to a conversation the user has left (the server would refuse it).
  if (!id || !store || !store.conversations.has(id)) return;
  socket.send({ type: 'typing', conversation_id: id, is_typing: false, ref: 'typing' });
}

composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!store || !store.open) return;
  const box = composer.elements.content;
  const content = box.value.trim();
  const files = staged;
  if (!content && !files.length) return;
  if (!content) {
    toast('Write a few words to go with the file.');
    return;
  }
  box.value = '';
  box.style.height = 'auto';
  stopTyping();
  const pending = {
    client_message_id: newId(),
    conversation_id: store.open.id,
    content,
    reply_to_id: reply ? reply.id : undefined,
    attachment_ids: undefined,
    // Not sent before its files are uploaded: a retry must name the same files.
    ready: !files.length,
    // Unsent messages left by an earlier page go in the order they were written.
    queued_at: Date.now(),
  };
  reply = null;
  staged = [];
  drawComposerContext();
  store.keepPending(pending);
  draw();
  if (files.length) {
    await Promise.all(files.map((f) => f.upload));
    // Logged out, in as someone else, or the message discarded while its files went up: it
    // is not sent.
    if (!store || !store.pending.has(pending.client_message_id)) return;
    const ids = files.filter((f) => f.attachment).map((f) => f.attachment.id);
    if (ids.length) pending.attachment_ids = ids;
    pending.ready = true;
    // Kept from here on: a page that closes mid-upload cannot finish the upload.
    store.keepPending(pending);
  }
  sendPending(pending);
});

function sendPending(pending) {
  // Over the socket when it is up; else it waits and goes (with the same client_message_id,
  // so a send that did arrive is not stored twice) once the socket is back.
  socket.send({
    type: 'message',
    conversation_id: pending.conversation_id,
    content: pending.content,
    client_message_id: pending.client_message_id,
    reply_to_id: pending.reply_to_id,
    attachment_ids: pending.attachment_ids,
  });
}

function resendPending() {
  if (!store) return;
  for (const pending of store.pending.values()) {
    if (pending.ready && !pending.failed) sendPending(pending);
  }
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function drawTyping() {
  if (!store) return;
  renderInbox(store, openId());
  if (store.open) renderTyping(store.typingIn(store.open.id, Date.now()));
}
// Indicators lapse by themselves; last-seen times age.
setInterval(drawTyping, 1000);
setInterval(() => store && renderPresence(store), 30000);

// ---- Search ------------------------------------------------------------------------------

const search = document.querySelector('input[name=search]');
let searchTimer = null;
search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 300);
});
search.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    clearTimeout(searchTimer);
    runSearch();
  } else if (event.key === 'Escape') closeSearch();
});

async function runSearch() {
  const q = search.value.trim();
  if (!q) {
    closeSearch();
    return;
  }
  if (!store) return;
  const asked = store;
  try {
    const page = await api.search(q);
    // Logged out, or in as someone else, meanwhile: the hits were the other account's.
    if (store !== asked) return;
    if (search.value.trim() === q) renderSearch(store, page.hits);
  } catch (e) {
    if (store === asked) toast(e.message);
  }
}

function closeSearch() {
  $('#search-results').hidden = true;
  $('#search-results').replaceChildren();
}

$('#search-results').addEventListener('click', (event) => {
  const button = event.target.closest('button');
  if (!button) return;
  if (button.dataset.action === 'close-search') {
    search.value = '';
    closeSearch();
  } else if (button.classList.contains('search-result')) {
    openConversation(button.dataset.conversationId, button.dataset.messageId);
  }
});

// ---- Start -------------------------------------------------------------------------------

const session = api.session;
if (session) showApp(session);
else showAuth('');
