// smolchat's page: one WebSocket to the server, the JSON protocol of docs/WEB.md.
//
// Rules kept throughout: whatever a user wrote reaches the DOM through textContent or a text
// node, never as markup; links are built with createElement('a') and only for http(s) URLs;
// lines are keyed by id, so a reconnect's replay never shows a line twice.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $('app'), roomTitle: $('room-title'), topic: $('topic'), status: $('status'),
    statusText: $('status-text'), retry: $('retry'), panelToggle: $('panel-toggle'),
    panel: $('panel'), scroller: $('scroller'), older: $('older'), log: $('log'), jump: $('jump'),
    composer: $('composer'), input: $('input'), send: $('send'), rooms: $('rooms'),
    joinForm: $('join-form'), joinRoom: $('join-room'), people: $('people'),
    login: $('login'), loginForm: $('login-form'), loginText: $('login-text'),
    loginError: $('login-error'), name: $('name'), passwordRow: $('password-row'),
    password: $('password'),
  };

  // Reconnect back-off: 1 s doubling to 30 s, each wait drawn between half and all of it.
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const HISTORY_PAGE = 50;
  const INPUT_HISTORY_MAX = 100;
  const LINK = /\bhttps?:\/\/[^\s<>"'`]+/gi;

  const state = {
    ws: null,
    phase: 'connecting', // connecting | login | online | waiting | closed
    attempt: 0,
    retryTimer: 0,
    countdownTimer: 0,
    me: null,            // our name, once welcomed
    token: null,         // the secret that takes our name back from a stale session, once welcomed
    password: null,      // kept in memory only, to log in again after a reconnect
    room: null,          // the room shown
    ids: new Set(),      // ids of the lines shown in this room
    lastId: 0,           // newest id shown in this room
    firstId: 0,          // oldest id shown in this room
    older: 'more',       // what lies before firstId: more | none | removed
    loadingOlder: false,
    chunks: [],          // lines of a history page still arriving
    helloSent: false,
    asking: false,       // an account command's password prompt is open during the chat
    nameRefused: false,
    who: [],
    sent: [],            // the input history (Up/Down)
    sentAt: 0,
    draft: '',
    lastSent: undefined,
    unread: 0,
  };

  // ---- The connection ----------------------------------------------------------------------

  function connect() {
    clearTimers();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(scheme + '//' + location.host + '/ws');
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.helloSent = false;
    state.nameRefused = false;
    setStatus('connecting', 'Connecting…');
    ws.onopen = () => {
      if (state.me) {
        // Resuming: ask for the lines after the last one shown, in the room shown.
        const hello = { type: 'hello', name: state.me };
        if (state.password) hello.password = state.password;
        if (state.room) hello.resume = resumeFrom();
        send(hello);
        state.helloSent = true;
      }
    };
    ws.onmessage = (event) => {
      if (ws !== state.ws) return;
      for (const part of String(event.data).split('\n')) {
        if (!part) continue;
        let msg;
        try { msg = JSON.parse(part); } catch (e) { continue; }
        handle(msg);
      }
    };
    ws.onclose = (event) => {
      if (ws !== state.ws) return;
      state.ws = null;
      setComposer(false);
      if (state.phase === 'closed') return;
      state.phase = 'waiting';
      scheduleReconnect(event.code);
    };
  }

  function send(msg) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  function scheduleReconnect() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    const wait = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    state.attempt = Math.min(state.attempt + 1, 10);
    const until = Date.now() + wait;
    const tick = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setStatus('offline', 'Disconnected. Reconnecting in ' + s + ' s…', true);
    };
    tick();
    state.countdownTimer = setInterval(tick, 1000);
    state.retryTimer = setTimeout(connect, wait);
  }

  function clearTimers() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
  }

  // The status line; `name` goes in a part that narrow screens leave out.
  function setStatus(kind, text, canRetry, name) {
    ui.status.dataset.state = kind;
    ui.statusText.textContent = text;
    if (name) {
      const as = document.createElement('span');
      as.className = 'as';
      as.textContent = ' as ' + name;
      ui.statusText.append(as);
    }
    ui.retry.hidden = !canRetry;
  }

  // ---- Messages from the server ------------------------------------------------------------

  function handle(msg) {
    switch (msg.type) {
      case 'prompt': return onPrompt(msg);
      case 'welcome': return onWelcome(msg);
      case 'room': return showRoom(msg.room, msg.topic);
      case 'line': return addLine(msg, false);
      case 'history': return onHistory(msg);
      case 'notice': return onNotice(msg);
      case 'private': return addPrivate(msg);
      case 'who': return onWho(msg);
      case 'rooms': return onRooms(msg);
      case 'error': return onError(msg);
      case 'bye': return onBye(msg);
      default: return undefined;
    }
  }

  // Where a reconnecting page left off, and the token of its last session: if the server still
  // holds that session (the connection dropped without a close), the name is taken back from it.
  function resumeFrom() {
    const resume = { room: state.room, last_id: state.lastId };
    if (state.token) resume.token = state.token;
    return resume;
  }

  function onPrompt(msg) {
    // The greeting sent on connect is ignored when a hello for a known name is on its way.
    if (msg.field === 'name' && state.helloSent && !state.nameRefused) return;
    // In chat, a password prompt is an account command's (/register, /password): the same
    // box, answered without leaving the chat.
    state.asking = state.phase === 'online' && msg.field === 'password';
    if (!state.asking) {
      state.phase = 'login';
      setStatus('connecting', 'Choose a name');
    }
    ui.login.hidden = false;
    ui.loginText.textContent = msg.text || '';
    const password = msg.field === 'password';
    ui.passwordRow.hidden = !password;
    ui.name.readOnly = password;
    ui.password.value = '';
    (password ? ui.password : ui.name).focus();
  }

  function onWelcome(msg) {
    clearTimers();
    state.attempt = 0;
    state.phase = 'online';
    state.me = msg.name;
    state.token = msg.token || null;
    ui.login.hidden = true;
    ui.loginError.hidden = true;
    setStatus('online', 'Connected', false, msg.name);
    setComposer(true);
    if (msg.room !== state.room) showRoom(msg.room);
    const focus = document.activeElement;
    if (!focus || focus === document.body || ui.login.contains(focus)) ui.input.focus();
    send({ type: 'who' });
    send({ type: 'rooms' });
  }

  function showRoom(room, topic) {
    state.room = room;
    state.ids.clear();
    state.lastId = 0;
    state.firstId = 0;
    state.older = 'more';
    state.loadingOlder = false;
    state.chunks = [];
    ui.log.replaceChildren();
    ui.older.textContent = '';
    ui.roomTitle.textContent = '#' + room;
    ui.log.setAttribute('aria-label', 'Messages in #' + room);
    setTopic(topic);
    updateTitle();
    if (state.phase === 'online') {
      send({ type: 'who' });
      send({ type: 'rooms' });
    }
  }

  function setTopic(topic) {
    ui.topic.hidden = !topic;
    ui.topic.textContent = topic || '';
  }

  function onHistory(msg) {
    if (msg.room !== state.room) return;
    // A history object's lines are its room's: they carry no room of their own.
    for (const line of msg.lines || []) state.chunks.push(Object.assign({ room: msg.room }, line));
    if (!msg.done) return;
    const lines = state.chunks;
    state.chunks = [];
    if (msg.page === 'older') {
      prependLines(lines);
      state.loadingOlder = false;
      if (msg.older) state.older = msg.older;
    } else {
      // A resume that could not bring every missed line starts the view afresh: scrolling up
      // then pages back through what was shown before, so nothing is shown twice.
      if (msg.gap) showRoom(state.room, ui.topic.textContent);
      ui.log.setAttribute('aria-busy', 'true');
      if (msg.gap) addNote('gap', 'Some messages were missed while you were away.');
      for (const line of lines) addLine(line, true);
      ui.log.removeAttribute('aria-busy');
      if (msg.older && (msg.page === 'join' || msg.gap)) state.older = msg.older;
      scrollToEnd();
    }
    showOlderState();
  }

  function showOlderState() {
    const text = {
      more: state.ids.size ? 'Scroll up for older messages' : '',
      none: 'This is the beginning of #' + state.room + '.',
      removed: 'Older messages were removed by the server\'s retention policy.',
    }[state.older] || '';
    ui.older.textContent = state.loadingOlder ? 'Loading older messages…' : text;
  }

  function onNotice(msg) {
    if (msg.room && msg.room !== state.room) return;
    const who = state.who;
    if (msg.kind === 'joined' && msg.name && !who.includes(msg.name)) who.push(msg.name);
    if ((msg.kind === 'left' || msg.kind === 'kicked') && msg.name) {
      state.who = who.filter((n) => n !== msg.name);
    }
    if (msg.kind === 'renamed' && msg.name && msg.to) {
      state.who = who.map((n) => (n === msg.name ? msg.to : n));
      if (msg.name === state.me) state.me = msg.to;
    }
    if (msg.kind === 'topic') setTopic(msg.topic || '');
    renderPeople();
    addNote('notice notice-' + msg.kind, msg.text);
  }

  function onWho(msg) {
    if (msg.room !== state.room) return;
    state.who = (msg.names || []).slice();
    renderPeople();
  }

  function renderPeople() {
    const items = state.who.map((name) => {
      const li = document.createElement('li');
      li.textContent = name;
      if (name === state.me) li.append(' (you)');
      return li;
    });
    ui.people.replaceChildren(...items);
    // The room list's count for this room follows who is here.
    const current = ui.rooms.querySelector('button[aria-current="true"] .count');
    if (current && state.who.length) {
      current.textContent = String(state.who.length);
      current.setAttribute('aria-label', state.who.length + (state.who.length === 1 ? ' person' : ' people'));
    }
  }

  function onRooms(msg) {
    const items = (msg.rooms || []).map((r) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      const name = document.createElement('span');
      name.textContent = '#' + r.room;
      const count = document.createElement('span');
      count.className = 'count';
      count.textContent = String(r.users);
      count.setAttribute('aria-label', r.users + (r.users === 1 ? ' person' : ' people'));
      button.append(name, count);
      if (r.room === state.room) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => joinRoom(r.room));
      li.append(button);
      return li;
    });
    ui.rooms.replaceChildren(...items);
    renderPeople();
  }

  function onError(msg) {
    if (msg.code === 'name' || msg.code === 'password') {
      state.nameRefused = true;
      ui.loginError.hidden = false;
      ui.loginError.textContent = msg.text;
      if (msg.code === 'password') state.password = null;
      return;
    }
    if (msg.code === 'too_long' && state.lastSent !== undefined) {
      ui.input.value = state.lastSent;
    }
    addNote('error', msg.text);
  }

  function onBye(msg) {
    addNote('notice notice-server', msg.text);
    if (!msg.reconnect) {
      state.phase = 'closed';
      clearTimers();
      setStatus('offline', 'Disconnected', true);
      setComposer(false);
    }
  }

  // ---- The log -----------------------------------------------------------------------------

  function addLine(msg, replay) {
    if (msg.room !== state.room || state.ids.has(msg.id)) return;
    const follow = atEnd();
    const li = lineItem(msg);
    // Lines arrive in id order; a line older than the newest shown goes where its id says.
    if (msg.id > state.lastId || !state.lastId) {
      ui.log.append(li);
    } else {
      const after = [...ui.log.children].find((el) => Number(el.dataset.id) > msg.id);
      ui.log.insertBefore(li, after || null);
    }
    state.ids.add(msg.id);
    state.lastId = Math.max(state.lastId, msg.id);
    state.firstId = state.firstId ? Math.min(state.firstId, msg.id) : msg.id;
    if (!replay) noteArrival(follow, msg.sender === state.me);
  }

  function prependLines(lines) {
    const fresh = lines.filter((l) => l.room === state.room && !state.ids.has(l.id));
    if (!fresh.length) return;
    const before = ui.scroller.scrollHeight - ui.scroller.scrollTop;
    const fragment = document.createDocumentFragment();
    for (const line of fresh) {
      fragment.append(lineItem(line));
      state.ids.add(line.id);
      state.firstId = state.firstId ? Math.min(state.firstId, line.id) : line.id;
      state.lastId = Math.max(state.lastId, line.id);
    }
    ui.log.setAttribute('aria-busy', 'true');
    ui.log.prepend(fragment);
    ui.log.removeAttribute('aria-busy');
    // Keep the line the user was reading where it was.
    ui.scroller.scrollTop = ui.scroller.scrollHeight - before;
  }

  function lineItem(msg) {
    const li = document.createElement('li');
    li.dataset.id = String(msg.id);
    li.className = msg.kind === 'action' ? 'msg action' : 'msg';
    if (msg.sender === state.me) li.classList.add('mine');
    li.append(timeOf(msg.time));
    const body = document.createElement('span');
    body.className = 'body';
    const sender = document.createElement('span');
    sender.className = 'sender';
    sender.textContent = msg.kind === 'action' ? '* ' + msg.sender : msg.sender;
    sender.style.setProperty('--hue', String(hue(msg.sender)));
    body.append(sender, ' ');
    appendText(body, msg.text);
    li.append(body);
    return li;
  }

  function addPrivate(msg) {
    const follow = atEnd();
    const li = document.createElement('li');
    li.className = msg.action ? 'msg private action' : 'msg private';
    li.append(timeOf(msg.time));
    const body = document.createElement('span');
    body.className = 'body';
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = msg.sender === state.me ? 'private to ' + msg.to : 'private';
    const sender = document.createElement('span');
    sender.className = 'sender';
    sender.textContent = msg.action ? '* ' + msg.sender : msg.sender;
    sender.style.setProperty('--hue', String(hue(msg.sender)));
    body.append(tag, ' ', sender, ' ');
    appendText(body, msg.text);
    li.append(body);
    ui.log.append(li);
    noteArrival(follow, msg.sender === state.me);
  }

  function addNote(className, text) {
    const follow = atEnd();
    const li = document.createElement('li');
    li.className = className;
    li.append(timeOf(Date.now()));
    const body = document.createElement('span');
    body.className = 'body';
    appendText(body, text);
    li.append(body);
    ui.log.append(li);
    noteArrival(follow, true);
  }

  // Text as text nodes, with http(s) URLs as links that open apart from this page.
  function appendText(parent, text) {
    text = String(text == null ? '' : text);
    let at = 0;
    for (const match of text.matchAll(LINK)) {
      let url = match[0].replace(/[).,;:!?\]}'"]+$/, '');
      const start = match.index;
      if (start > at) parent.append(text.slice(at, start));
      parent.append(link(url) || url);
      at = start + url.length;
    }
    if (at < text.length) parent.append(text.slice(at));
  }

  function link(text) {
    let url;
    try { url = new URL(text); } catch (e) { return null; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    const a = document.createElement('a');
    a.href = url.href;
    a.textContent = text;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    return a;
  }

  function timeOf(ms) {
    const when = new Date(ms);
    const el = document.createElement('time');
    el.dateTime = when.toISOString();
    const today = new Date().toDateString() === when.toDateString();
    const clock = when.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
    el.textContent = today ? clock : when.toLocaleDateString([], { month: 'short', day: 'numeric' });
    el.title = when.toLocaleString();
    return el;
  }

  function hue(name) {
    let h = 0;
    for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  // ---- Scrolling ---------------------------------------------------------------------------

  function atEnd() {
    const s = ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  function scrollToEnd() {
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
    ui.jump.hidden = true;
  }

  function noteArrival(follow, own) {
    if (follow || own) scrollToEnd();
    else ui.jump.hidden = false;
    if (document.hidden && !own) {
      state.unread += 1;
      updateTitle();
    }
  }

  function updateTitle() {
    const room = state.room ? '#' + state.room + ' · ' : '';
    document.title = (state.unread ? '(' + state.unread + ') ' : '') + room + 'smolchat';
  }

  function maybeLoadOlder() {
    if (ui.scroller.scrollTop > 80 || state.loadingOlder || state.older !== 'more') return;
    if (!state.firstId || state.phase !== 'online') return;
    if (send({ type: 'history', room: state.room, before: state.firstId, limit: HISTORY_PAGE })) {
      state.loadingOlder = true;
      showOlderState();
    }
  }

  // ---- Input -------------------------------------------------------------------------------

  function setComposer(on) {
    ui.input.disabled = !on;
    ui.send.disabled = !on;
    ui.joinRoom.disabled = !on;
    ui.joinForm.querySelector('button').disabled = !on;
  }

  function joinRoom(room) {
    room = room.trim().replace(/^#/, '');
    if (room && room !== state.room) send({ type: 'join', room });
    closePanel();
    ui.input.focus();
  }

  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = ui.input.value;
    if (!text.trim() || !send({ type: 'say', text })) return;
    state.lastSent = text;
    if (state.sent[state.sent.length - 1] !== text) state.sent.push(text);
    if (state.sent.length > INPUT_HISTORY_MAX) state.sent.shift();
    state.sentAt = state.sent.length;
    state.draft = '';
    ui.input.value = '';
    scrollToEnd();
  });

  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowUp' && state.sentAt > 0) {
      if (state.sentAt === state.sent.length) state.draft = ui.input.value;
      state.sentAt -= 1;
      ui.input.value = state.sent[state.sentAt];
    } else if (event.key === 'ArrowDown' && state.sentAt < state.sent.length) {
      state.sentAt += 1;
      ui.input.value = state.sentAt === state.sent.length ? state.draft : state.sent[state.sentAt];
    } else if (event.key === 'Escape') {
      ui.input.value = '';
      state.sentAt = state.sent.length;
    } else {
      return;
    }
    event.preventDefault();
    const end = ui.input.value.length;
    ui.input.setSelectionRange(end, end);
  });

  ui.loginForm.addEventListener('submit', (event) => {
    event.preventDefault();
    ui.loginError.hidden = true;
    if (!ui.passwordRow.hidden) {
      const password = ui.password.value;
      if (state.asking) {
        // An account command's answer: the last one typed is the account's password now.
        send({ type: 'password', password });
        if (password) state.password = password;
        state.asking = false;
        ui.login.hidden = true;
        ui.input.focus();
        return;
      }
      if (send({ type: 'password', password })) state.password = password;
      return;
    }
    const name = ui.name.value.trim();
    if (!name) return;
    state.me = null;
    state.nameRefused = false;
    state.helloSent = true;
    const hello = { type: 'hello', name };
    if (state.room) hello.resume = resumeFrom();
    if (!send(hello)) state.helloSent = false;
  });

  ui.joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    joinRoom(ui.joinRoom.value);
    ui.joinRoom.value = '';
  });

  ui.retry.addEventListener('click', () => {
    state.attempt = 0;
    state.phase = 'connecting';
    if (state.ws) state.ws.close();
    connect();
  });

  function closePanel() {
    ui.panel.classList.remove('open');
    ui.panelToggle.setAttribute('aria-expanded', 'false');
  }

  ui.panelToggle.addEventListener('click', () => {
    const open = ui.panel.classList.toggle('open');
    ui.panelToggle.setAttribute('aria-expanded', String(open));
    if (open) {
      send({ type: 'rooms' });
      const first = ui.panel.querySelector('button, input:not([disabled])');
      if (first) first.focus();
    }
  });

  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && ui.panel.classList.contains('open')) {
      closePanel();
      ui.panelToggle.focus();
    }
  });

  ui.scroller.addEventListener('scroll', () => {
    if (atEnd()) ui.jump.hidden = true;
    maybeLoadOlder();
  }, { passive: true });
  ui.jump.addEventListener('click', () => { scrollToEnd(); ui.input.focus(); });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      state.unread = 0;
      updateTitle();
    }
  });

  connect();
})();
