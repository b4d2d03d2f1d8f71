// Roomcast chat demo: the socket.io tutorial chat on the gateway's reserved
// events (join, leave, publish, presence), with the official client. "Who is
// online" is read once per room (presence) and then kept by the gateway's
// roomcast:join / roomcast:leave events (the demo runs with --presence-rooms).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ACK_TIMEOUT = 8000;

  if (typeof io !== "function") {
    $("login-error").textContent =
      "The socket.io client was not found at /socket.io/socket.io.js (build with `make vendor`).";
    $("enter").disabled = true;
    return;
  }

  // A conversation is a room ("r/general") or a direct chat with a user ("u/<id>").
  const state = {
    socket: null,
    me: { name: "", id: null },
    rooms: new Set(), // rooms this client has joined
    convs: new Map(), // key -> {kind, target, label, messages, unread}
    current: null, // key of the conversation on screen
    online: [], // presence of the current room: [{user, name}]
    presence: new Map(), // room -> Map(user -> {user, name}), once read
    probe: null, // nonce of a pending "who am I" probe
  };

  // --- the gateway's reserved events, as promises -------------------------

  function call(event, payload) {
    return new Promise((resolve, reject) => {
      state.socket.timeout(ACK_TIMEOUT).emit(event, payload, (err, res) => {
        if (err) return reject(new Error(`no answer to "${event}"`));
        if (!res || res.error) {
          return reject(new Error((res && res.error && res.error.message) || `"${event}" failed`));
        }
        resolve(res);
      });
    });
  }

  const publishToRoom = (room, event, data) => call("publish", { room, event, data });
  const publishToUser = (user, event, data) => call("publish", { user, event, data });

  // --- conversations ------------------------------------------------------

  function conv(kind, target, label) {
    const key = `${kind}/${target}`;
    let c = state.convs.get(key);
    if (!c) {
      c = { key, kind, target, label: label || target, messages: [], unread: 0 };
      state.convs.set(key, c);
    } else if (label) {
      c.label = label;
    }
    return c;
  }

  function addMessage(c, msg) {
    c.messages.push({ at: new Date(), ...msg });
    if (c.messages.length > 500) c.messages.shift();
    if (c.key === state.current) renderLog();
    else if (!msg.system) c.unread++;
    renderLists();
  }

  function open(key) {
    const c = state.convs.get(key);
    if (!c) return;
    if (state.current !== key) state.online = [];
    state.current = key;
    c.unread = 0;
    $("title").textContent = c.kind === "r" ? `#${c.target}` : `@ ${c.label}`;
    renderLists();
    renderLog();
    if (c.kind === "r") showPresence();
    $("message").focus();
  }

  // --- rendering (textContent only: nothing from the wire becomes markup) ---

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    Object.assign(e, props);
    for (const ch of children) if (ch != null) e.append(ch);
    return e;
  }

  function renderLog() {
    const c = state.convs.get(state.current);
    const log = $("log");
    log.replaceChildren(
      ...(c ? c.messages : []).map((m) => {
        if (m.system) return el("li", { className: "system", textContent: m.text });
        const li = el(
          "li",
          { className: m.mine ? "msg mine" : "msg" },
          el("span", { className: "author", textContent: m.name }),
          el("span", { className: "text", textContent: m.text }),
          el("span", { className: "time", textContent: m.at.toLocaleTimeString() }),
        );
        li.dataset.from = m.from || "";
        return li;
      }),
    );
    log.scrollTop = log.scrollHeight;
  }

  function renderLists() {
    const item = (c) => {
      const li = el(
        "li",
        { className: c.key === state.current ? "current" : "" },
        el("span", { className: "label", textContent: c.kind === "r" ? `#${c.label}` : c.label }),
        el("span", { className: "badge", textContent: c.unread ? String(c.unread) : "" }),
      );
      li.dataset.key = c.key;
      li.onclick = () => open(c.key);
      if (c.kind === "r") {
        const leave = el("button", { className: "leave", title: `Leave #${c.target}`, textContent: "×" });
        leave.onclick = (ev) => {
          ev.stopPropagation();
          leaveRoom(c.target);
        };
        li.append(leave);
      }
      return li;
    };
    const all = [...state.convs.values()];
    $("rooms").replaceChildren(...all.filter((c) => c.kind === "r" && state.rooms.has(c.target)).map(item));
    $("dms").replaceChildren(...all.filter((c) => c.kind === "u").map(item));

    const c = state.convs.get(state.current);
    $("online-room").textContent = c && c.kind === "r" ? `#${c.target}` : "—";
    $("users").replaceChildren(
      ...state.online.map((u) => {
        const self = u.user === state.me.id;
        const li = el("li", { className: self ? "self" : "" },
          el("span", { className: "label", textContent: self ? `${displayName(u)} (you)` : displayName(u) }));
        li.dataset.user = u.user;
        li.title = u.user;
        if (!self) li.onclick = () => open(conv("u", u.user, displayName(u)).key);
        return li;
      }),
    );
  }

  const displayName = (u) => u.name || u.user;

  function showError(text) {
    $("chat-error").textContent = text || "";
  }

  // --- rooms and presence -------------------------------------------------

  async function joinRoom(room, { quiet = false } = {}) {
    await call("join", room);
    state.rooms.add(room);
    const c = conv("r", room);
    if (!quiet) addMessage(c, { system: true, text: `You joined #${room}.` });
    state.presence.delete(room); // read again, with us in it
    return c;
  }

  async function leaveRoom(room) {
    try {
      await call("leave", room);
    } catch (err) {
      return showError(`Could not leave #${room}: ${err.message}`);
    }
    state.rooms.delete(room);
    state.presence.delete(room);
    state.convs.delete(`r/${room}`);
    if (state.current === `r/${room}`) {
      const next = [...state.rooms][0];
      state.current = null;
      state.online = [];
      if (next) open(`r/${next}`);
      else renderLog();
    }
    renderLists();
  }

  // Reads a room's members once (presence); the gateway's events keep the
  // list from then on.
  const loading = new Set();
  async function loadPresence(room) {
    if (!state.socket.connected || loading.has(room)) return;
    loading.add(room);
    try {
      const res = await call("presence", { room, limit: 1000 });
      const members = new Map();
      for (const u of res.users || []) members.set(u.user, { user: u.user, name: u.name });
      state.presence.set(room, members);
      showPresence();
    } catch (err) {
      showError(`Who is online: ${err.message}`);
    } finally {
      loading.delete(room);
    }
  }

  // Shows the current room's members, reading them first if needed.
  function showPresence() {
    const c = state.convs.get(state.current);
    if (!c || c.kind !== "r") return;
    const members = state.presence.get(c.target);
    if (!members) return void loadPresence(c.target);
    state.online = [...members.values()].sort((a, b) => displayName(a).localeCompare(displayName(b)));
    identifySelf();
    renderLists();
  }

  // The gateway's presence events (the last argument is the offset).
  function onMember(joined, e) {
    if (!e || !state.rooms.has(e.room)) return;
    const members = state.presence.get(e.room);
    if (members) {
      if (joined) members.set(e.user, { user: e.user, name: e.name });
      else members.delete(e.user);
    }
    const who = e.name || e.user;
    addMessage(conv("r", e.room), { system: true, text: `${who} ${joined ? "joined" : "left"}.` });
    if (state.current === `r/${e.room}`) showPresence();
  }

  // The gateway gives anonymous users a random id; find ours among the people
  // in a room we are in. One person with our name is us; with several, send
  // each a private probe and see which comes back.
  function identifySelf() {
    if (state.me.id || state.probe) return;
    const mine = state.online.filter((u) => u.name === state.me.name);
    if (mine.length === 1) {
      state.me.id = mine[0].user;
      return;
    }
    if (mine.length > 1) {
      state.probe = Math.random().toString(36).slice(2);
      for (const u of mine) publishToUser(u.user, "whoami", { nonce: state.probe, user: u.user }).catch(() => {});
    }
  }

  // --- connection -----------------------------------------------------------

  function setStatus(s, text) {
    const st = $("status");
    st.dataset.state = s;
    st.textContent = text;
  }

  function connect(name, token) {
    const auth = token ? { token, name } : { name };
    const socket = io({ auth });
    state.socket = socket;

    socket.on("connect", async () => {
      const transport = socket.io.engine.transport.name;
      setStatus("online", `online (${transport})`);
      socket.io.engine.once("upgrade", () => setStatus("online", `online (${socket.io.engine.transport.name})`));
      $("login").hidden = true;
      $("chat").hidden = false;
      $("whoami").textContent = state.me.name;
      showError("");
      state.presence.clear(); // read again: events may have been missed while away
      if (socket.recovered) return showPresence();
      state.me.id = null; // a new session may have a new user id (anonymous ones do)
      state.probe = null;
      // A fresh session: (re)join every room we were in.
      const rooms = state.rooms.size ? [...state.rooms] : ["general"];
      for (const room of rooms) {
        try {
          await joinRoom(room, { quiet: state.convs.has(`r/${room}`) });
        } catch (err) {
          showError(`Could not join #${room}: ${err.message}`);
        }
      }
      if (!state.current && state.rooms.size) open(`r/${[...state.rooms][0]}`);
      else showPresence();
    });

    socket.on("connect_error", (err) => {
      if (socket.active) {
        setStatus("connecting", "reconnecting…");
        return;
      }
      // Refused by the server (bad token, ...): back to the login form.
      setStatus("offline", "offline");
      $("login-error").textContent = err.message;
      $("login").hidden = false;
      $("chat").hidden = true;
      $("enter").disabled = false;
    });

    socket.on("disconnect", (reason) => {
      setStatus(socket.active ? "connecting" : "offline", socket.active ? `reconnecting… (${reason})` : "offline");
    });

    socket.on("chat", (data, meta = {}) => {
      if (!meta.room || !state.rooms.has(meta.room)) return;
      addMessage(conv("r", meta.room), { from: meta.user, name: meta.name || meta.user, text: textOf(data) });
    });

    socket.on("dm", (data, meta = {}) => {
      if (!meta.user) return;
      const c = conv("u", meta.user, meta.name || meta.user);
      addMessage(c, { from: meta.user, name: meta.name || meta.user, text: textOf(data) });
    });

    socket.on("roomcast:join", (e) => onMember(true, e));
    socket.on("roomcast:leave", (e) => onMember(false, e));
    // A big room sends its member count instead: read the list again.
    socket.on("roomcast:presence", (e) => {
      if (!e || !state.rooms.has(e.room)) return;
      state.presence.delete(e.room);
      if (state.current === `r/${e.room}`) showPresence();
    });

    socket.on("whoami", (data) => {
      if (data && state.probe && data.nonce === state.probe && typeof data.user === "string") {
        state.me.id = data.user;
        state.probe = null;
        renderLists();
      }
    });
  }

  const textOf = (data) => (typeof data === "string" ? data : data && typeof data.text === "string" ? data.text : JSON.stringify(data));

  // --- forms ----------------------------------------------------------------

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("name").value.trim();
    if (!name) return;
    $("login-error").textContent = "";
    $("enter").disabled = true;
    setStatus("connecting", "connecting…");
    state.me.name = name;
    if (state.socket) {
      // A retry after a refused connect: reuse the socket with the new credentials.
      const token = $("token").value.trim();
      state.socket.auth = token ? { token, name } : { name };
      state.socket.connect();
      return;
    }
    connect(name, $("token").value.trim());
  });

  $("join-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("join-room");
    const room = input.value.trim().replace(/^#/, "");
    if (!room) return;
    showError("");
    try {
      if (!state.rooms.has(room)) await joinRoom(room);
      input.value = "";
      open(`r/${room}`);
    } catch (err) {
      showError(`Could not join #${room}: ${err.message}`);
    }
  });

  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("message");
    const text = input.value.trim();
    const c = state.convs.get(state.current);
    if (!text || !c) return;
    showError("");
    try {
      if (c.kind === "r") await publishToRoom(c.target, "chat", { text });
      else await publishToUser(c.target, "dm", { text });
    } catch (err) {
      return showError(`Not sent: ${err.message}`);
    }
    input.value = "";
    // The gateway does not echo a message to its sender: show it here.
    addMessage(c, { from: state.me.id, name: state.me.name, text, mine: true });
  });
})();
