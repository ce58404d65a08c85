// The playground page: renders the emulator's channel like Discord does, and acts as one user through the server.
// Each module draws or drives one part of it; this one starts the page and keeps its live connection.
import { api, notice, state } from "./api.js";
import { remove, scrollToBottom, upsert } from "./chat.js";
import { initComposer } from "./composer.js";
import { $, avatar } from "./format.js";
import { renderMembers, setStatus } from "./frame.js";
import { openModal } from "./modal.js";

async function loadState() {
  const data = await api(`/api/state?name=${encodeURIComponent(state.name)}`);
  state.me = data.me;
  state.bot = data.bot;
  state.users = data.users;
  state.messageCommands = data.message_commands || [];
  $("#guild-name").textContent = data.guild;
  $("#channel-name").textContent = data.channel.name;
  $("#sidebar-channel").textContent = data.channel.name;
  $("#me-avatar").replaceWith(Object.assign(avatar({ id: data.me.id, name: data.me.name }, "small"), { id: "me-avatar" }));
  renderMembers();
  const list = $("#message-list");
  list.replaceChildren();
  state.messages.clear();
  for (const message of data.messages) upsert(message);
  setStatus(data.status, data.failure);
  scrollToBottom();
}

function connect() {
  const generation = ++state.wsGeneration;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?name=${encodeURIComponent(state.name)}`);
  state.ws = ws;
  ws.addEventListener("open", () => { loadState().catch((e) => notice(e.message)); });
  ws.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    switch (data.type) {
      case "message_create": case "message_update": upsert(data.message); break;
      case "message_delete": remove(data.message_id); break;
      case "status": setStatus(data.status, data.failure); break;
      case "users": state.users = data.users; renderMembers(); break;
      case "notice": notice(data.text); break;
      case "modal": openModal(data.interaction_id, data.modal); break;
      default: break;
    }
  });
  ws.addEventListener("close", () => {
    if (generation !== state.wsGeneration) return;
    setStatus("offline");
    setTimeout(() => { if (generation === state.wsGeneration) connect(); }, 1000);
  });
}

function setName(name) {
  name = name.replace(/\s+/g, " ").trim().slice(0, 32);
  if (!name) name = `guest-${Math.floor(1000 + Math.random() * 9000)}`;
  state.name = name;
  localStorage.setItem("playground.name", name);
  $("#name").value = name;
}

function init() {
  setName(localStorage.getItem("playground.name") || "");
  $("#name").addEventListener("change", () => {
    setName($("#name").value);
    connect(); // a new identity: its own websocket and its own view of ephemeral messages
  });
  $("#name").addEventListener("keydown", (event) => { if (event.key === "Enter") $("#name").blur(); });
  initComposer();
  connect();
}

init();
