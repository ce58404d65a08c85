// Small helpers for drawing the page: escaping, Discord's markdown, names, avatars, times and sizes.
import { state } from "./api.js";

export const $ = (selector) => document.querySelector(selector);
const PALETTE = '<svg viewBox="0 0 24 24" width="60%" height="60%" aria-hidden="true"><path fill="#fff" d="M12 3a9 9 0 0 0 0 18c.83 0 1.5-.67 1.5-1.5 0-.39-.15-.74-.39-1.01-.23-.26-.38-.61-.38-.99 0-.83.67-1.5 1.5-1.5H16c2.76 0 5-2.24 5-5 0-4.42-4.03-8-9-8Zm-5.5 9a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Zm3-4a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Zm5 0a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Zm3 4a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Z"/></svg>';
const COLORS = ["#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#747f8d", "#00a8fc", "#9b59b6"];

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function colorFor(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[hash % COLORS.length];
}

export function avatar(user, size = "") {
  const el = document.createElement("div");
  el.className = `avatar ${size}`.trim();
  el.style.background = user && user.bot ? "#5865f2" : colorFor(user ? user.id : "?");
  if (user && user.bot) el.innerHTML = PALETTE;
  else el.textContent = displayName(user).slice(0, 1).toUpperCase();
  return el;
}

export function displayName(user) {
  return (user && (user.global_name || user.username || user.name)) || "someone";
}

export function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return `Today at ${time}`;
  const yesterday = new Date(today.getTime() - 86400000);
  if (date.toDateString() === yesterday.toDateString()) return `Yesterday at ${time}`;
  return `${date.toLocaleDateString()} ${time}`;
}

export function compareIds(a, b) {
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

// Discord's markdown, the parts bots use: code blocks, inline code, bold, italics, underline, strike,
// links, quotes, headings, mentions and custom emoji.
export function markdown(text) {
  if (!text) return "";
  const blocks = [];
  let source = String(text).replace(/```(?:[a-z0-9_+-]*\n)?([\s\S]*?)```/gi, (_, code) => {
    blocks.push(`<pre><code>${escapeHtml(code.replace(/\n$/, ""))}</code></pre>`);
    return `\u0000${blocks.length - 1}\u0000`;
  });
  source = source.replace(/`([^`\n]+)`/g, (_, code) => {
    blocks.push(`<code>${escapeHtml(code)}</code>`);
    return `\u0000${blocks.length - 1}\u0000`;
  });
  let html = escapeHtml(source);
  html = html
    .replace(/&lt;@!?(\d+)&gt;/g, (_, id) => `<span class="mention">@${escapeHtml(state.users[id] ? state.users[id].name : "unknown-user")}</span>`)
    .replace(/&lt;#(\d+)&gt;/g, () => `<span class="mention">#general</span>`)
    .replace(/&lt;a?:(\w+):\d+&gt;/g, ":$1:")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noreferrer">$1</a>')
    .replace(/\*\*([\s\S]+?)\*\*/g, "<strong>$1</strong>")
    .replace(/__([\s\S]+?)__/g, "<u>$1</u>")
    .replace(/(^|[^\w*])\*([^*\n]+?)\*(?!\w)/g, "$1<em>$2</em>")
    .replace(/(^|[^\w])_([^_\n]+?)_(?!\w)/g, "$1<em>$2</em>")
    .replace(/~~([\s\S]+?)~~/g, "<s>$1</s>")
    .replace(/^### (.*)$/gm, "<strong>$1</strong>")
    .replace(/^## (.*)$/gm, '<strong style="font-size:1.25em">$1</strong>')
    .replace(/^# (.*)$/gm, '<strong style="font-size:1.5em">$1</strong>')
    .replace(/^-# (.*)$/gm, '<span class="timestamp">$1</span>')
    .replace(/^&gt; (.*)$/gm, "<blockquote>$1</blockquote>");
  return html.replace(/\u0000(\d+)\u0000/g, (_, i) => blocks[Number(i)]);
}
