// hangoutd demo client: Protocol V2 through the browser's own WebSocket.
//
// Rules kept here: text from other users reaches the page only through
// textContent, never parsed as HTML; a "changes" or "error" packet counts only when
// it comes from "server"; repeats the contract allows (open for a known token,
// close for an unknown one, a delta already applied) change nothing.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'), retry: $('retry'),
    meForm: $('me-form'), name: $('name'), color: $('color'),
    users: $('users'), count: $('count'), log: $('log'),
    composer: $('composer'), target: $('target'), targetName: $('target-name'),
    targetCancel: $('target-cancel'), text: $('text'),
    roomName: $('room-name'), roomForm: $('room-form'), roomInput: $('room-input'),
    roomError: $('room-error'),
  };

  const NAME_MAX = 32;      // what we send, and what we show of others' names
  const TEXT_SHOW_MAX = 4000;
  const LOG_MAX = 500;      // older lines are dropped so a long session stays light
  const RETRY_MIN = 500, RETRY_MAX = 15000;
  const HEX_COLOR = /^#[0-9a-f]{6}$/i;
  const FALLBACK_COLOR = '#8a919c';

  const users = new Map(); // token -> Map of properties (a Map, so "__proto__" is just a key)
  let me = '';             // own token, learnt from the welcome's metadata entry
  let ws = null;
  let welcomed = false;    // the first changes packet of a connection is the whole state
  let everWelcomed = false;
  let attempt = 0;         // failed connects since the last welcome, for the backoff
  let retryTimer = 0, retryAt = 0, countdownTimer = 0;
  let offlineWhy = '';     // why the last good connection ended, kept over failed retries
  // The whisper target stays chosen when that user leaves (or we lose the
  // connection): a message meant for one person must never fall back to
  // everyone on its own. Sending is refused until Escape.
  let whisperTo = '';      // a token, or '' for everyone
  let whisperName = '';    // its last known name
  // A newcomer's name often comes one batch after its open. Its join notice
  // waits for the name a little while, so nobody reads "guest-1a2b joined"
  // followed at once by "guest-1a2b is now Ada".
  const pendingJoin = new Map(); // token -> timer
  const JOIN_NAME_WAIT = 1500;

  // Identity survives a reload of this tab, and only of this tab.
  const store = (() => { try { return window.sessionStorage; } catch (e) { return null; } })();
  const load = (k) => { try { return (store && store.getItem('hangoutd.' + k)) || ''; } catch (e) { return ''; } };
  const save = (k, v) => { try { if (store) store.setItem('hangoutd.' + k, v); } catch (e) { /* private mode */ } };

  function randomHex(bytes) {
    const b = new Uint8Array(bytes);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }
  // A saturated mid-light colour reads on both the light and the dark theme.
  function randomColor() {
    const h = Math.floor(Math.random() * 360), s = 0.62, l = 0.5;
    const a = s * Math.min(l, 1 - l);
    const f = (n) => {
      const k = (n + h / 30) % 12;
      const v = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
      return Math.round(v * 255).toString(16).padStart(2, '0');
    };
    return '#' + f(0) + f(8) + f(4);
  }

  // ---- room ----

  // The page's path names its room, by the server's rules (docs/protocol.md,
  // Rooms): "/" is the default room, "/NAME" room NAME. The form below checks
  // a name by the same rules before it navigates, so a typo gets a message
  // here instead of a 404 page.
  const ROOM_MAX = 128;
  const ROOM_CHAR = /^[A-Za-z0-9._~-]$/;

  // roomOf reads a path ("/", "/a/b", "/a/b/") as a room: the name ('' for
  // the default room), or the reason it names none.
  function roomOf(path) {
    if (path === '/') return { name: '' };
    let name = path.slice(1);
    if (name.endsWith('/')) name = name.slice(0, -1); // "/lobby/" is "/lobby"
    for (const ch of name) {
      if (ch !== '/' && !ROOM_CHAR.test(ch)) {
        return { problem: (/\s/.test(ch) ? 'A space' : '“' + ch + '”') + ' cannot be part of a room name.' };
      }
    }
    const parts = name.split('/');
    if (parts.includes('')) return { problem: 'A room name cannot have an empty part: one / between parts, none at the start.' };
    if (parts.some((x) => x === '.' || x === '..')) return { problem: 'A part of a room name cannot be . or ..' };
    if (name.length > ROOM_MAX) return { problem: 'A room name is at most ' + ROOM_MAX + ' characters; this one has ' + name.length + '.' };
    return { name };
  }

  // Only a page opened from elsewhere (a file) has a path that names no
  // room: it shows that path, and the server will refuse it.
  const here = roomOf(location.pathname);
  const roomShown = here.problem === undefined ? '/' + here.name : location.pathname;
  ui.roomName.textContent = roomShown;
  if (here.name === '') ui.roomName.append(el('span', 'room-note', ' (default room)'));
  ui.roomName.title = here.name === '' ? 'the default room' : roomShown;
  document.title = (here.name === '' ? 'Default room' : roomShown) + ' · hangoutd';

  function roomProblem(text) {
    ui.roomError.textContent = text;
    ui.roomInput.setAttribute('aria-invalid', 'true');
    ui.roomInput.focus();
  }
  ui.roomInput.addEventListener('input', () => {
    if (!ui.roomError.textContent) return;
    ui.roomError.textContent = '';
    ui.roomInput.removeAttribute('aria-invalid');
  });
  // A real navigation, so back, forward and reload work and the new room's
  // page starts from nothing. The query string goes along: it is for the
  // server, not for one room.
  ui.roomForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const typed = ui.roomInput.value.trim();
    if (typed === '') {
      roomProblem('Type a room name, or / for the default room.');
      return;
    }
    const r = roomOf(typed.startsWith('/') ? typed : '/' + typed);
    if (r.problem !== undefined) {
      roomProblem(r.problem);
      return;
    }
    location.assign('/' + r.name + location.search);
  });

  let myName = load('name') || 'guest-' + randomHex(2);
  let myColor = load('color');
  if (!HEX_COLOR.test(myColor)) myColor = randomColor();
  save('name', myName);
  save('color', myColor);
  ui.name.value = myName;
  ui.color.value = myColor.toLowerCase();

  function nameOf(token) {
    const p = users.get(token);
    const n = p && p.get('name');
    if (typeof n === 'string') {
      const t = n.trim().slice(0, NAME_MAX);
      if (t) return t;
    }
    return 'guest-' + token.slice(0, 4);
  }
  function colorOf(token) {
    const p = users.get(token);
    const c = p && p.get('color');
    return typeof c === 'string' && HEX_COLOR.test(c) ? c : FALLBACK_COLOR;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function dot(token) {
    const d = el('span', 'dot');
    d.style.backgroundColor = colorOf(token);
    d.setAttribute('aria-hidden', 'true');
    return d;
  }

  // ---- connection ----

  function send(packet) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(packet));
    return true;
  }

  // setStatus shows the connection state. The status is a live region, so
  // the countdown that changes every second sits in a part screen readers skip.
  const statusText = el('span');
  const statusCountdown = el('span', 'countdown');
  statusCountdown.setAttribute('aria-hidden', 'true');
  ui.status.replaceChildren(el('span', 'status-line'));
  ui.status.firstChild.append(statusText, statusCountdown);
  function setStatus(state, text, countdown) {
    ui.status.dataset.state = state;
    if (statusText.textContent !== text) statusText.textContent = text;
    statusCountdown.textContent = countdown || '';
    ui.retry.hidden = state !== 'offline';
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    if (ws) return;
    setStatus('connecting', offlineWhy ? 'Offline: ' + offlineWhy + '. Reconnecting…' : 'Connecting…');
    let sock;
    try {
      // The path as it came (the server reads "/lobby/" as "/lobby"), and the
      // query string, which is for the server (a token, say).
      sock = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
        location.pathname + location.search);
    } catch (e) {
      offlineWhy = offlineWhy || 'cannot connect';
      retry();
      return;
    }
    ws = sock;
    welcomed = false;
    sock.onopen = () => {
      if (ws === sock) send({ to: 'server', type: 'changes', data: { name: myName, color: myColor } });
    };
    sock.onmessage = (ev) => {
      if (ws !== sock || typeof ev.data !== 'string') return;
      let p;
      try { p = JSON.parse(ev.data); } catch (e) { return; }
      if (p && typeof p === 'object' && !Array.isArray(p)) onPacket(p);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      lost(ev);
    };
  }

  function closeReason(ev) {
    const r = ev.reason ? ' (' + ev.reason + ')' : '';
    switch (ev.code) {
      case 1001: return 'the server went away' + r;
      case 1006: return 'the connection was lost';
      default: return 'the server closed the connection, code ' + ev.code + r;
    }
  }

  function lost(ev) {
    const why = closeReason(ev);
    if (welcomed) {
      offlineWhy = why;
      notice('Disconnected: ' + why + '.', 'error');
    } else if (!offlineWhy) {
      offlineWhy = everWelcomed ? why : 'cannot reach the server';
    }
    forget();
    retry();
  }

  // forget drops what the page knew of the room, once its connection is gone.
  function forget() {
    welcomed = false;
    me = '';
    users.clear();
    for (const timer of pendingJoin.values()) clearTimeout(timer);
    pendingJoin.clear();
    renderUsers();
  }

  // Exponential backoff with jitter, so a restarted server is not met by every
  // page at the same millisecond.
  function retry() {
    const base = Math.min(RETRY_MAX, RETRY_MIN * 2 ** attempt);
    attempt++;
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    countdown();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(countdown, 1000);
  }
  function countdown() {
    const s = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
    setStatus('offline', 'Offline: ' + offlineWhy + '.', ' Retrying in ' + s + ' s');
  }

  // ---- packets ----

  function onPacket(p) {
    const from = p.from, type = p.type;
    if (typeof from !== 'string' || typeof type !== 'string') return;
    if (from === 'server') {
      if (type === 'changes' && Array.isArray(p.data)) applyChanges(p.data);
      else if (type === 'error') serverError(p.data);
      return;
    }
    if (type === 'chat' || type === 'whisper') {
      const text = textOf(p.data);
      if (text !== null) message(type, from, text, '');
    }
    // Anything else, "changes" and "error" from a user included, is ignored.
  }

  function textOf(data) {
    let t = data;
    if (data && typeof data === 'object') t = data.text;
    if (typeof t !== 'string' || t.trim() === '') return null;
    return t.length > TEXT_SHOW_MAX ? t.slice(0, TEXT_SHOW_MAX) + '…' : t;
  }

  function applyChanges(entries) {
    const welcome = !welcomed;
    if (welcome) users.clear();
    const joined = [], left = [], renamed = [];
    const hasName = (t) => typeof users.get(t).get('name') === 'string';
    for (const e of entries) {
      if (!e || typeof e !== 'object' || typeof e.token !== 'string') continue;
      const t = e.token;
      if (e.type === 'open') {
        if (!users.has(t)) {
          users.set(t, new Map());
          if (!welcome && t !== me) joined.push(t);
        }
      } else if (e.type === 'close') {
        if (users.has(t)) {
          if (pendingJoin.has(t)) {
            clearTimeout(pendingJoin.get(t)); // came and went unnamed: say nothing
            pendingJoin.delete(t);
          } else if (!joined.includes(t)) {
            left.push(nameOf(t));
          }
          users.delete(t);
        }
      } else if (e.type === 'metadata') {
        me = t;
      } else if (e.type === 'properties') {
        const props = users.get(t);
        const delta = e.properties;
        if (!props || !delta || typeof delta !== 'object' || Array.isArray(delta)) continue;
        const before = nameOf(t);
        for (const k of Object.keys(delta)) {
          if (delta[k] === null) props.delete(k);
          else props.set(k, delta[k]);
        }
        if (pendingJoin.has(t) && hasName(t)) {
          clearTimeout(pendingJoin.get(t));
          pendingJoin.delete(t);
          joined.push(t);
        } else if (!welcome && t !== me && !joined.includes(t) && !pendingJoin.has(t) && nameOf(t) !== before) {
          renamed.push([before, t]);
        }
      }
    }
    if (welcome) {
      welcomed = true;
      attempt = 0;
      offlineWhy = '';
      setStatus('online', 'Online');
      const others = users.size - (users.has(me) ? 1 : 0);
      notice((everWelcomed ? 'Reconnected. ' : 'Connected. ') +
        (others === 0 ? 'Nobody else is here yet.' : others === 1 ? '1 other person is here.' : others + ' other people are here.'));
      everWelcomed = true;
    }
    for (const t of joined) {
      if (!users.has(t)) continue;
      if (hasName(t)) {
        notice(nameOf(t) + ' joined.');
      } else {
        pendingJoin.set(t, setTimeout(() => {
          pendingJoin.delete(t);
          if (users.has(t)) notice(nameOf(t) + ' joined.');
        }, JOIN_NAME_WAIT));
      }
    }
    for (const n of left) notice(n + ' left.');
    for (const [before, t] of renamed) notice(before + ' is now ' + nameOf(t) + '.');
    renderUsers();
  }

  function serverError(data) {
    const code = data && typeof data.code === 'string' ? data.code : 'error';
    const msg = data && typeof data.message === 'string' ? data.message : '';
    notice('Server refused that (' + code + (msg ? ': ' + msg : '') + ').', 'error');
  }

  // ---- rendering ----

  function renderUsers() {
    const active = document.activeElement;
    const focused = active && active.closest ? active.closest('#users [data-token]') : null;
    const focusTok = focused ? focused.dataset.token : '';
    const tokens = [...users.keys()].sort((a, b) => {
      if (a === me) return -1;
      if (b === me) return 1;
      return nameOf(a).localeCompare(nameOf(b), undefined, { sensitivity: 'base' }) || (a < b ? -1 : 1);
    });
    const frag = document.createDocumentFragment();
    let refocus = null;
    for (const t of tokens) {
      const li = el('li', 'user');
      li.dataset.token = t;
      const name = nameOf(t);
      let item;
      if (t === me) {
        li.dataset.me = 'true';
        item = el('div', 'self');
        item.append(dot(t), el('span', 'name', name), el('span', 'tag', 'you'));
      } else {
        item = el('button');
        item.type = 'button';
        item.setAttribute('aria-pressed', t === whisperTo ? 'true' : 'false');
        item.setAttribute('aria-label', 'Whisper to ' + name);
        item.append(dot(t), el('span', 'name', name));
        if (t === focusTok) refocus = item;
      }
      li.append(item);
      frag.append(li);
    }
    if (tokens.length === 0) frag.append(el('li', 'empty', welcomed ? 'Nobody here.' : 'Not connected.'));
    ui.users.replaceChildren(frag);
    ui.count.textContent = tokens.length ? '(' + tokens.length + ')' : '';
    if (refocus) refocus.focus();
    showTarget();
  }

  function stamp() {
    const d = new Date();
    const t = el('time', '', d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    t.dateTime = d.toISOString();
    return t;
  }

  function append(li) {
    const log = ui.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    while (log.children.length > LOG_MAX) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  // message shows a chat or a whisper; to is the target of a whisper we sent.
  function message(kind, from, text, to) {
    const li = el('li', 'msg msg-' + kind);
    li.dataset.kind = kind;
    li.dataset.from = from;
    const who = el('span', 'who');
    who.append(dot(from), document.createTextNode(from === me ? 'you' : nameOf(from)));
    li.append(stamp(), who);
    if (kind === 'whisper') {
      li.dataset.dir = to ? 'out' : 'in';
      if (to) li.dataset.to = to;
      li.append(el('span', 'via', to ? ' whisper to ' + nameOf(to) + ':' : ' whispers to you:'));
    } else {
      li.append(document.createTextNode(': '));
    }
    li.append(el('span', 'text', text));
    append(li);
  }

  function notice(text, kind) {
    const k = kind || 'notice';
    const li = el('li', 'msg msg-' + k);
    li.dataset.kind = k;
    li.append(stamp(), el('span', 'text', text));
    append(li);
  }

  // ---- whisper target ----

  function startWhisper(token) {
    whisperTo = token;
    ui.composer.dataset.to = token;
    ui.target.hidden = false;
    renderUsers();
  }
  function stopWhisper() {
    if (!whisperTo) return;
    whisperTo = '';
    ui.composer.dataset.to = '*';
    ui.target.hidden = true;
    ui.text.placeholder = 'Message everyone';
    renderUsers();
  }
  function showTarget() {
    if (!whisperTo) return;
    const here = users.has(whisperTo);
    if (here) whisperName = nameOf(whisperTo);
    ui.target.dataset.here = here ? 'true' : 'false';
    ui.targetName.textContent = here ? whisperName : whisperName + ' (not here)';
    ui.text.placeholder = here ? 'Whisper to ' + whisperName : whisperName + ' is not here. Esc: message everyone';
  }

  // ---- input ----

  ui.users.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button');
    const li = btn && btn.closest('[data-token]');
    if (!li) return;
    if (li.dataset.token === whisperTo) stopWhisper();
    else startWhisper(li.dataset.token);
    ui.text.focus();
  });

  ui.targetCancel.addEventListener('click', () => { stopWhisper(); ui.text.focus(); });

  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && whisperTo) {
      ev.preventDefault();
      stopWhisper();
      ui.text.focus();
    }
  });

  ui.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = ui.text.value;
    if (text.trim() === '') return;
    if (!welcomed) {
      notice('Not connected yet; your message is still in the box.', 'error');
      return;
    }
    if (whisperTo) {
      if (!users.has(whisperTo)) {
        notice(whisperName + ' is not here any more, so nothing was sent. Press Escape to message everyone.', 'error');
        return;
      }
      if (!send({ to: [whisperTo], type: 'whisper', data: { text } })) return;
      message('whisper', me, text, whisperTo);
    } else if (!send({ to: '*', type: 'chat', data: { text } })) {
      return;
    }
    ui.text.value = '';
  });

  ui.meForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = ui.name.value.trim().slice(0, NAME_MAX);
    if (!n) {
      ui.name.value = myName;
      return;
    }
    ui.name.value = n;
    if (n !== myName) {
      myName = n;
      save('name', n);
      send({ to: 'server', type: 'changes', data: { name: n } }); // offline: sent on the next connect
    }
    ui.text.focus();
  });

  ui.color.addEventListener('change', () => {
    const c = ui.color.value;
    if (!HEX_COLOR.test(c)) return;
    myColor = c;
    save('color', c);
    send({ to: 'server', type: 'changes', data: { color: c } });
  });

  ui.retry.addEventListener('click', () => { if (!ws) connect(); });
  // A page left for another keeps its connection while the browser holds it
  // for back and forward, and would stay in the room, unseen, for as long.
  // So leaving the page leaves the room, and coming back joins it again.
  window.addEventListener('pagehide', () => {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    if (!ws) return;
    const sock = ws;
    ws = null;
    sock.close(1000);
    forget();
  });
  window.addEventListener('pageshow', (ev) => {
    if (!ev.persisted || ws) return;
    attempt = 0;
    connect();
  });
  window.addEventListener('online', () => { if (!ws) connect(); });

  renderUsers();
  connect();
}());
