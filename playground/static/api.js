// The page's link to the playground server: who this page speaks for, and the calls it makes on their behalf.

export const state = {
  name: "",
  locale: navigator.language, // the server picks the nearest Discord locale, so the bot answers in this language
  me: null,
  bot: null,
  users: {},
  messages: new Map(), // id -> message JSON
  ws: null,
  wsGeneration: 0,
  status: "starting",
  messageCommands: [], // the bot's message commands: its entries in a message's "Apps" menu
};

export async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = {};
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

export function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// A command with its pictures, as a multipart form (one field per option). The server takes a multipart upload only
// with the X-Imagebot header, which another site's form cannot send.
export function sendCommandForm(command, form) {
  form.set("name", state.name);
  form.set("locale", state.locale);
  form.set("command", command);
  return api("/api/command", { method: "POST", headers: { "X-Imagebot": "1" }, body: form });
}

// Something to tell this person, shown in the chat as an "only you can see this" note (chat.js listens): modules
// that act on a click say what went wrong without depending on how the chat is drawn.
export function notice(text) {
  window.dispatchEvent(new CustomEvent("playground:notice", { detail: text }));
}

export async function runCommand(command, options = {}) {
  try {
    await postJson("/api/command", { name: state.name, locale: state.locale, command, options });
  } catch (error) {
    notice(error.message);
  }
}

// A click on a message's button, select or Apps menu entry: `el` shows it is busy for a moment.
async function act(el, path, body) {
  el.classList.add("busy");
  try {
    await postJson(path, { name: state.name, locale: state.locale, ...body });
  } catch (error) {
    notice(error.message);
  } finally {
    setTimeout(() => el.classList.remove("busy"), 600);
  }
}

export function click(messageId, customId, el, values) {
  return act(el, "/api/click", { message_id: messageId, custom_id: customId, values });
}

export function messageCommand(messageId, command, el) {
  return act(el, "/api/message-command", { message_id: messageId, command });
}
