// The REST half of the client: the session (tokens in localStorage), every request with its
// bearer token, and the refresh-token rotation when the access token runs out.

const SESSION_KEY = 'chatd.session';
const DEVICE_KEY = 'chatd.device_token';

/** An error answered by the server: `status`, `code` and `detail` of its JSON body. */
export class ApiError extends Error {
  constructor(status, body) {
    super(describe(body, status));
    this.status = status;
    this.code = body && body.code ? body.code : 'http_' + status;
    this.fields = body && Array.isArray(body.errors) ? body.errors : [];
  }
}

function describe(body, status) {
  if (!body) return 'The server answered ' + status + '.';
  const fields = Array.isArray(body.errors) && body.errors.length
    ? ': ' + body.errors.map((e) => e.field + ' ' + e.message).join('; ')
    : '';
  return (body.detail || 'The server answered ' + status) + fields;
}

/** The stored session, or null when logged out. */
export function loadSession() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function saveSession(session) {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

/**
 * The REST API. `onLoggedOut` is called once the session is gone for good (logout, or a
 * refresh token the server no longer takes).
 */
export class Api {
  constructor(onLoggedOut) {
    this.onLoggedOut = onLoggedOut;
    this.refreshing = null;
  }

  get session() {
    return loadSession();
  }

  /** Logs in, stores the session with the user's id and name, and returns it. */
  async login(username, password) {
    const body = { username, password, device_name: 'Web browser' };
    const device = localStorage.getItem(DEVICE_KEY);
    if (device) body.device_token = device;
    const tokens = await this.raw('POST', '/api/v1/auth/login', body, null);
    localStorage.setItem(DEVICE_KEY, tokens.device_token);
    const me = await this.raw('GET', '/api/v1/auth/me', undefined, tokens.access_token);
    const session = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      user_id: me.id,
      username: me.username,
    };
    saveSession(session);
    return session;
  }

  signup(username, email, password) {
    return this.raw('POST', '/api/v1/auth/signup', { username, email, password }, null);
  }

  /**
   * Ends the session on the server (refreshing an expired access token first, so the
   * session really ends) and forgets it here.
   */
  async logout() {
    if (!loadSession()) return;
    try {
      await this.request('POST', '/api/v1/auth/logout');
    } catch {
      // Already ended or unreachable: the tokens are forgotten here either way.
    }
    saveSession(null);
  }

  /**
   * Redeems the refresh token for a new pair. A refresh token must never be sent twice (the
   * server takes a reuse for theft and ends the session), so one refresh runs at a time in
   * this tab, and across tabs under a Web Lock: a tab that waited finds the pair another tab
   * already got and uses it.
   */
  refresh() {
    if (!this.refreshing) {
      const stale = loadSession();
      const run = () => this.redeem(stale);
      const locked = navigator.locks
        ? navigator.locks.request('chatd-refresh', run)
        : run();
      this.refreshing = locked.finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async redeem(stale) {
    const current = loadSession();
    if (!current) throw new ApiError(401, { code: 'unauthorized', detail: 'logged out' });
    if (stale && current.refresh_token !== stale.refresh_token) return current;
    let pair;
    try {
      pair = await this.raw('POST', '/api/v1/auth/refresh', { refresh_token: current.refresh_token }, null);
    } catch (error) {
      if (error.status === 401) {
        saveSession(null);
        this.onLoggedOut();
      }
      throw error;
    }
    const session = { ...current, access_token: pair.access_token, refresh_token: pair.refresh_token };
    saveSession(session);
    return session;
  }

  /** A request with the session's token, refreshed and retried once on a 401. */
  async request(method, path, body) {
    return answer(await this.authorized(path, (token) => options(method, body, token)));
  }

  /** A file's bytes as a Blob (downloads need the bearer token, which an <img> cannot send). */
  async blob(path) {
    const response = await this.authorized(path, (token) => ({ headers: { Authorization: 'Bearer ' + token } }));
    if (!response.ok) throw new ApiError(response.status, await jsonOrNull(response));
    return response.blob();
  }

  /** Uploads a file (multipart part `file`) and returns the attachment. */
  async upload(file) {
    return answer(await this.authorized('/api/v1/attachments', (token) => {
      const form = new FormData();
      form.append('file', file, file.name);
      return { method: 'POST', headers: { Authorization: 'Bearer ' + token }, body: form };
    }));
  }

  /**
   * Sends with the session's token and, on a 401, once more with a refreshed one; answers the
   * response whatever its status. `init(token)` builds fetch's options for each try, so a
   * body is never sent twice. Logged out meanwhile (another tab, a logout while a file went
   * up), there is no token to send: that is a 401 like the server's.
   */
  async authorized(path, init) {
    const session = loadSession();
    if (!session) throw new ApiError(401, { code: 'unauthorized', detail: 'not logged in' });
    const response = await reach(path, init(session.access_token));
    if (response.status !== 401) return response;
    const fresh = await this.refresh();
    return reach(path, init(fresh.access_token));
  }

  async raw(method, path, body, token) {
    return answer(await reach(path, options(method, body, token)));
  }

  // The routes the client uses.
  inbox() {
    return this.request('GET', '/api/v1/conversations?archived=false&limit=100');
  }
  conversation(id) {
    return this.request('GET', '/api/v1/conversations/' + id);
  }
  history(id, before) {
    const cursor = before ? '&before=' + before : '';
    return this.request('GET', '/api/v1/conversations/' + id + '/messages?limit=' + PAGE + cursor);
  }
  historyAfter(id, after) {
    return this.request('GET', '/api/v1/conversations/' + id + '/messages?limit=' + PAGE + '&after=' + after);
  }
  createConversation(participantIds, name) {
    const body = { participant_ids: participantIds };
    if (name) body.name = name;
    return this.request('POST', '/api/v1/conversations', body);
  }
  findUsers(q) {
    return this.request('GET', '/api/v1/users?limit=20&q=' + encodeURIComponent(q));
  }
  user(id) {
    return this.request('GET', '/api/v1/users/' + id);
  }
  editMessage(id, content) {
    return this.request('PATCH', '/api/v1/messages/' + id, { content });
  }
  deleteMessage(id) {
    return this.request('DELETE', '/api/v1/messages/' + id + '?scope=everyone');
  }
  react(id, emoji, on) {
    return this.request(on ? 'PUT' : 'DELETE', '/api/v1/messages/' + id + '/reactions/' + encodeURIComponent(emoji));
  }
  markRead(id) {
    return this.request('PUT', '/api/v1/messages/' + id + '/read');
  }
  search(q) {
    return this.request('GET', '/api/v1/search/messages?limit=20&q=' + encodeURIComponent(q));
  }
  presence(userIds) {
    return this.request('POST', '/api/v1/presence/query', { user_ids: userIds });
  }
}

/** Messages per page of history. */
export const PAGE = 50;

async function jsonOrNull(response) {
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** fetch, with a network failure turned into the ApiError the callers expect. */
async function reach(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: 'network_error', detail: 'The server cannot be reached.' });
  }
}

/** fetch's options for a JSON request. */
function options(method, body, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
}

/** The JSON body of a response, or its error as an ApiError. */
async function answer(response) {
  const json = await jsonOrNull(response);
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}
