// The live half of the client: one WebSocket that authenticates with its first frame,
// reconnects with backoff and jitter when it drops, and catches up with `sync` from the last
// position it applied (docs/websocket.md, "Reconnecting without losing messages").

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;
const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 8000;

/**
 * The connection. `handlers.frame(frame)` gets every server frame, `handlers.state(state)`
 * each change of `online` / `connecting` / `offline`, `handlers.connected(frame, first)` the
 * `connected` frame (first: the first since the page loaded), and `handlers.unauthorized()`
 * a token the server refused even after a refresh.
 */
export class Socket {
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.ws = null;
    this.position = null;
    this.attempt = 0;
    this.timer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.stopped = true;
    this.state = 'offline';
    this.away = false;
    this.refreshedForThisAttempt = false;
    window.addEventListener('online', () => this.reconnectNow());
    window.addEventListener('offline', () => this.drop());
  }

  start() {
    this.stopped = false;
    this.position = null;
    // Read here, not only on visibilitychange: the page may have been hidden while logged out.
    this.away = document.hidden;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopTimers();
    if (this.ws) this.ws.close(1000, 'logged out');
    this.ws = null;
    this.setState('offline');
  }

  /** Sends a frame if the socket is up; answers whether it was sent. */
  send(frame) {
    if (this.state !== 'online' || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Tells the server this device is away (tab hidden) or back. */
  setAway(away) {
    this.away = away;
    this.send({ type: 'presence', status: away ? 'away' : 'online' });
  }

  /** Remembers the highest position applied: the place a later `sync` resumes from. */
  advance(seq) {
    if (typeof seq === 'number' && (this.position === null || seq > this.position)) this.position = seq;
  }

  reconnectNow() {
    if (this.stopped || this.state === 'online' || (this.state === 'connecting' && this.ws)) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.open();
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.handlers.state(state);
  }

  open() {
    // One socket at a time: an `online` event, the backoff timer or a stop and start during a
    // refresh may find one already there. It is detached first so its close is ignored.
    clearTimeout(this.timer);
    const old = this.ws;
    this.ws = null;
    if (old) {
      this.stopTimers();
      old.close();
    }
    if (this.stopped) return;
    const session = this.api.session;
    if (!session) return;
    this.setState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(scheme + location.host + '/api/v1/ws');
    this.ws = ws;
    let refused = null;
    ws.addEventListener('open', () => ws.send(JSON.stringify({ token: session.access_token })));
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.beat();
      if (frame.type === 'error' && (frame.code === 'token_expired' || frame.code === 'unauthorized') && this.state !== 'online') {
        refused = frame.code;
        return;
      }
      this.receive(frame);
    });
    ws.addEventListener('close', () => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.stopTimers();
      if (this.stopped) return;
      this.setState('offline');
      if (refused) this.afterRefusal();
      else this.later();
    });
  }

  async afterRefusal() {
    // A refused token: refresh once and try at once; if the refresh fails the session is over.
    if (this.refreshedForThisAttempt) {
      this.refreshedForThisAttempt = false;
      this.handlers.unauthorized();
      return;
    }
    this.refreshedForThisAttempt = true;
    let failure = null;
    try {
      await this.api.refresh();
    } catch (error) {
      failure = error;
    }
    if (this.stopped) return;
    if (this.ws) {
      // Another socket opened while the refresh ran: that one carries on. It may have sent
      // the old token, so its own refusal is allowed a refresh rather than ending the session.
      this.refreshedForThisAttempt = false;
      return;
    }
    if (failure && failure.status === 401) this.handlers.unauthorized();
    else if (failure) this.later();
    else this.open();
  }

  later() {
    clearTimeout(this.timer);
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    // Full jitter keeps many clients from coming back at the same instant.
    this.timer = setTimeout(() => this.open(), delay / 2 + Math.random() * (delay / 2));
  }

  receive(frame) {
    if (frame.type === 'connected') {
      this.attempt = 0;
      this.refreshedForThisAttempt = false;
      const first = this.position === null;
      if (first) this.position = frame.last_seq;
      this.setState('online');
      if (this.away) this.send({ type: 'presence', status: 'away' });
      if (!first) this.send({ type: 'sync', since_seq: this.position });
      this.startPings();
      this.handlers.connected(frame, first);
      return;
    }
    if (frame.type === 'pong') return;
    if (frame.type === 'resync') {
      const since = typeof frame.since_seq === 'number' ? Math.min(frame.since_seq, this.position) : this.position;
      this.send({ type: 'sync', since_seq: since });
      return;
    }
    this.handlers.frame(frame);
    if (frame.type === 'synced') this.advance(frame.last_seq);
    else this.advance(frame.seq);
  }

  // Browsers cannot send WebSocket pings: an application `ping` notices a dead network.
  startPings() {
    this.stopTimers();
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: 'ping' })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => this.drop(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  /**
   * Gives up on the current socket at once: on a dead network its close event can take
   * minutes, so it is detached first and a new one is tried with backoff.
   */
  drop() {
    const ws = this.ws;
    if (!ws || this.stopped) return;
    this.ws = null;
    this.stopTimers();
    this.setState('offline');
    ws.close();
    this.later();
  }

  beat() {
    clearTimeout(this.pongTimer);
  }

  stopTimers() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}
