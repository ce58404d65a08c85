// The channel: each message drawn like Discord does, kept in order as the emulator's events arrive.
import { messageCommand, state } from "./api.js";
import { renderComponents } from "./components.js";
import { $, avatar, compareIds, displayName, escapeHtml, formatTime, markdown } from "./format.js";
import { renderAttachments, renderEmbed } from "./media.js";

const EPHEMERAL = 1 << 6;
const LOADING = 1 << 7;
const COMPONENTS_V2 = 1 << 15; // the message is laid out by its components alone: no content, no loose attachments

// What the page rendered, in order, for tests and for curiosity: {id, content, attachments, flags, kind}.
window.playgroundSeen = [];

function ephemeralNote(onDismiss) {
  const note = document.createElement("div");
  note.className = "ephemeral-note";
  note.innerHTML = `<svg class="eye" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 5C5.648 5 1 12 1 12s4.648 7 11 7 11-7 11-7-4.648-7-11-7Zm0 12a5 5 0 1 1 0-10 5 5 0 0 1 0 10Zm0-8a3 3 0 1 0 0 6 3 3 0 0 0 0-6Z"/></svg>
    <span>Only you can see this</span> • <a>Dismiss message</a>`;
  note.querySelector("a").addEventListener("click", onDismiss);
  return note;
}

export function renderMessage(message) {
  const el = document.createElement("article");
  el.className = "msg";
  el.dataset.id = message.id;
  el.dataset.author = message.author.id;
  const ephemeral = Boolean(message.flags & EPHEMERAL);
  const loading = Boolean(message.flags & LOADING);
  if (ephemeral) el.classList.add("ephemeral");
  if (loading) el.classList.add("loading");

  const meta = message.interaction_metadata;
  if (meta && meta.user) {
    el.classList.add("has-reply");
    const reply = document.createElement("div");
    reply.className = "reply";
    reply.append(avatar(meta.user, "tiny"));
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = displayName(meta.user);
    reply.append(who);
    if (meta.name) {
      reply.append(" used ");
      const cmd = document.createElement("span");
      cmd.className = "cmd";
      cmd.textContent = `/${meta.name}`;
      reply.append(cmd);
    } else {
      reply.append(" clicked a button");
    }
    el.append(reply);
  }

  el.append(avatar(message.author));
  const header = document.createElement("div");
  header.className = "msg-header";
  header.innerHTML = `<span class="author">${escapeHtml(displayName(message.author))}</span>${message.author.bot ? '<span class="bot-tag">APP</span>' : ""}
    <time class="timestamp" datetime="${escapeHtml(message.timestamp)}">${escapeHtml(formatTime(message.timestamp))}</time>`;
  el.append(header);

  if (loading && !message.content && !(message.embeds || []).length) {
    const thinking = document.createElement("div");
    thinking.className = "content thinking";
    thinking.innerHTML = `<span>${escapeHtml(displayName(message.author))} is thinking</span><span class="dots"><i></i><i></i><i></i></span>`;
    el.append(thinking);
  } else if (message.content) {
    const content = document.createElement("div");
    content.className = "content";
    content.innerHTML = markdown(message.content);
    if (message.edited_timestamp && !message.interaction_id) {
      content.insertAdjacentHTML("beforeend", '<span class="edited">(edited)</span>');
    }
    el.append(content);
  }
  // A components v2 message shows its files only where its components place them (a media gallery, a thumbnail).
  if ((message.attachments || []).length && !(message.flags & COMPONENTS_V2)) el.append(renderAttachments(message));
  for (const embed of message.embeds || []) el.append(renderEmbed(message, embed));
  if ((message.components || []).length) {
    const components = document.createElement("div");
    components.className = "components";
    renderComponents(message, message.components, components);
    el.append(components);
  }
  if (message.dm) {
    el.classList.add("dm");
    const note = document.createElement("div");
    note.className = "dm-note";
    note.textContent = "📬 Direct message — sent to you alone";
    el.append(note);
  } else if (ephemeral) el.append(ephemeralNote(() => { state.messages.delete(message.id); el.remove(); }));
  const picture = (message.attachments || []).some((a) => (a.content_type || "").startsWith("image/") && !/^preview\./.test(a.filename));
  if (picture && !loading && !message.dm) el.append(appsMenu(message));
  return el;
}

// A message's "Apps" menu, shown on hover like Discord's: the bot's message commands (e.g. "Describe image").
function appsMenu(message) {
  const menu = document.createElement("div");
  menu.className = "msg-apps";
  for (const command of state.messageCommands) {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "msg-app";
    item.title = `Apps ▸ ${command}`;
    item.textContent = `🔎 ${command}`;
    item.addEventListener("click", () => messageCommand(message.id, command, item));
    menu.append(item);
  }
  return menu;
}

function renderNotice(notice) {
  const message = {
    id: notice.id, author: { id: "0", username: "Playground", bot: true }, content: notice.text,
    timestamp: notice.timestamp, flags: EPHEMERAL, attachments: [], embeds: [], components: [],
  };
  const el = renderMessage(message);
  el.classList.add("notice");
  el.querySelector(".ephemeral-note a").onclick = () => el.remove();
  return el;
}

function groupWithPrevious(el) {
  const prev = el.previousElementSibling;
  if (!prev || el.classList.contains("has-reply") || prev.dataset.author !== el.dataset.author) return;
  const a = new Date(prev.querySelector("time").dateTime), b = new Date(el.querySelector("time").dateTime);
  if (b - a < 7 * 60 * 1000) el.classList.add("grouped");
}

function nearBottom() {
  const box = $("#messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

export function scrollToBottom() {
  const box = $("#messages");
  box.scrollTop = box.scrollHeight;
}

export function upsert(message) {
  const list = $("#message-list");
  const stick = nearBottom();
  const old = list.querySelector(`.msg[data-id="${message.id}"]`);
  if (message.deleted) {
    state.messages.delete(message.id);
    if (old) old.remove();
    return;
  }
  state.messages.set(message.id, message);
  const el = renderMessage(message);
  window.playgroundSeen.push({
    id: message.id, content: message.content, flags: message.flags, kind: old ? "update" : "create",
    attachments: (message.attachments || []).map((a) => a.filename),
    gallery: [...el.querySelectorAll(".media-gallery img")].map((img) => img.src),
  });
  if (old) {
    if (old.classList.contains("grouped")) el.classList.add("grouped");
    old.replaceWith(el);
  } else {
    let before = null;
    for (const node of list.children) {
      if (node.dataset.id && !node.classList.contains("notice") && compareIds(node.dataset.id, message.id) > 0) { before = node; break; }
    }
    list.insertBefore(el, before);
    groupWithPrevious(el);
  }
  for (const img of el.querySelectorAll("img")) img.addEventListener("load", () => { if (stick) scrollToBottom(); }, { once: true });
  if (stick) scrollToBottom();
}

export function remove(id) {
  state.messages.delete(id);
  const el = $("#message-list").querySelector(`.msg[data-id="${id}"]`);
  if (el) el.remove();
}

function showNotice(text) {
  const item = { id: `notice-${Date.now()}`, text, timestamp: new Date().toISOString() };
  const stick = nearBottom();
  $("#message-list").append(renderNotice(item));
  if (stick) scrollToBottom();
}

window.addEventListener("playground:notice", (event) => showNotice(event.detail));
