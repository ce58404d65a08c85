// The playground page: renders the emulator's channel like Discord does, and acts as one user through the server.
"use strict";

const $ = (selector) => document.querySelector(selector);
const EPHEMERAL = 1 << 6;
const LOADING = 1 << 7;
const COMPONENTS_V2 = 1 << 15; // the message is laid out by its components alone: no content, no loose attachments
const PALETTE = '<svg viewBox="0 0 24 24" width="60%" height="60%" aria-hidden="true"><path fill="#fff" d="M12 3a9 9 0 0 0 0 18c.83 0 1.5-.67 1.5-1.5 0-.39-.15-.74-.39-1.01-.23-.26-.38-.61-.38-.99 0-.83.67-1.5 1.5-1.5H16c2.76 0 5-2.24 5-5 0-4.42-4.03-8-9-8Zm-5.5 9a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Zm3-4a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Zm5 0a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Zm3 4a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3Z"/></svg>';
const COLORS = ["#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#747f8d", "#00a8fc", "#9b59b6"];

const state = {
  name: "",
  me: null,
  bot: null,
  users: {},
  messages: new Map(), // id -> message JSON
  notices: [], // local "only you can see this" notes from the playground itself
  ws: null,
  wsGeneration: 0,
  status: "starting",
  messageCommands: [], // the bot's message commands: its entries in a message's "Apps" menu
};
// What the page rendered, in order, for tests and for curiosity: {id, content, attachments, flags, kind}.
window.playgroundSeen = [];

// ------------------------------------------------------------------------------------------------ helpers

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function colorFor(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[hash % COLORS.length];
}

function avatar(user, size = "") {
  const el = document.createElement("div");
  el.className = `avatar ${size}`.trim();
  el.style.background = user && user.bot ? "#5865f2" : colorFor(user ? user.id : "?");
  if (user && user.bot) el.innerHTML = PALETTE;
  else el.textContent = displayName(user).slice(0, 1).toUpperCase();
  return el;
}

function displayName(user) {
  return (user && (user.global_name || user.username || user.name)) || "someone";
}

function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return `Today at ${time}`;
  const yesterday = new Date(today.getTime() - 86400000);
  if (date.toDateString() === yesterday.toDateString()) return `Yesterday at ${time}`;
  return `${date.toLocaleDateString()} ${time}`;
}

function compareIds(a, b) {
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

// Discord's markdown, the parts bots use: code blocks, inline code, bold, italics, underline, strike,
// links, quotes, headings, mentions and custom emoji.
function markdown(text) {
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

// ------------------------------------------------------------------------------------------------ rendering

function renderEmoji(emoji) {
  const span = document.createElement("span");
  span.className = "emoji";
  span.textContent = emoji.id ? `:${emoji.name}:` : emoji.name;
  return span;
}

function renderButton(message, component) {
  const style = component.style || 2;
  const el = document.createElement(style === 5 ? "a" : "button");
  el.className = `button s${style}`;
  if (style === 5) {
    el.href = component.url;
    el.target = "_blank";
    el.rel = "noreferrer";
  } else {
    el.type = "button";
    el.dataset.customId = component.custom_id || "";
    el.disabled = Boolean(component.disabled);
    el.addEventListener("click", () => click(message.id, component.custom_id, el));
  }
  if (component.emoji) el.append(renderEmoji(component.emoji));
  if (component.label) {
    const label = document.createElement("span");
    label.textContent = component.label;
    el.append(label);
  }
  el.setAttribute("aria-label", component.label || (component.emoji && component.emoji.name) || "button");
  return el;
}

function selectOptions(select, component) {
  for (const option of component.options || []) {
    const el = document.createElement("option");
    el.value = option.value;
    el.textContent = `${option.emoji ? option.emoji.name + " " : ""}${option.label}`;
    el.selected = Boolean(option.default);
    select.append(el);
  }
}

function renderSelect(message, component) {
  if ((component.max_values || 1) > 1) return renderMultiSelect(message, component);
  const select = document.createElement("select");
  select.className = "select";
  select.disabled = Boolean(component.disabled);
  const placeholder = document.createElement("option");
  placeholder.textContent = component.placeholder || "Make a selection";
  placeholder.value = "";
  select.append(placeholder);
  selectOptions(select, component);
  select.addEventListener("change", () => {
    if (select.value) click(message.id, component.custom_id, select, [select.value]);
  });
  return select;
}

// Several choices at once: Discord sends them when its dropdown closes; here, when "Choose" is pressed.
function renderMultiSelect(message, component) {
  const box = document.createElement("div");
  box.className = "multi-select";
  const select = document.createElement("select");
  select.className = "select";
  select.multiple = true;
  select.size = Math.min(6, (component.options || []).length);
  select.disabled = Boolean(component.disabled);
  select.title = component.placeholder || "Make a selection";
  select.dataset.customId = component.custom_id || "";
  selectOptions(select, component);
  const choose = document.createElement("button");
  choose.type = "button";
  choose.className = "button s1";
  choose.textContent = "Choose";
  choose.disabled = select.disabled;
  choose.addEventListener("click", () => {
    const values = Array.from(select.selectedOptions, (option) => option.value);
    click(message.id, component.custom_id, choose, values);
  });
  box.append(select, choose);
  return box;
}

// ------------------------------------------------------------------------------------------------ forms (modals)

// A form the bot opened in answer to this person's click: shown over the page until submitted or cancelled.
function openModal(interactionId, modal) {
  closeModal();
  window.playgroundModal = { interactionId, modal }; // the open form, for tests and for curiosity
  const backdrop = document.createElement("div");
  backdrop.id = "modal-backdrop";
  const form = document.createElement("form");
  form.className = "modal";
  form.setAttribute("role", "dialog");
  form.setAttribute("aria-label", modal.title || "Form");
  const title = document.createElement("h2");
  title.textContent = modal.title || "";
  form.append(title);
  const fields = [];
  for (const component of modal.components || []) {
    // Today's layout: a label component (type 18) around its input; the legacy one: an action row of inputs.
    const items = component.type === 18 ? [[component.component, component.label, component.description]]
      : (component.components || []).map((input) => [input, input.label, null]);
    for (const [input, labelText, description] of items) {
      const field = document.createElement("label");
      field.className = "modal-field";
      const name = document.createElement("span");
      name.className = "modal-label";
      name.textContent = labelText || "";
      if (input.required !== false && input.type === 4) name.append(Object.assign(document.createElement("span"), { className: "required", textContent: " *" }));
      field.append(name);
      if (description) field.append(Object.assign(document.createElement("span"), { className: "modal-description", textContent: description }));
      let control;
      if (input.type === 4) {
        control = document.createElement(input.style === 2 ? "textarea" : "input");
        control.value = input.value || "";
        control.placeholder = input.placeholder || "";
        if (input.max_length) control.maxLength = input.max_length;
        if (input.min_length) control.minLength = input.min_length;
        control.required = input.required !== false;
      } else {
        control = document.createElement("select");
        control.multiple = (input.max_values || 1) > 1;
        selectOptions(control, input);
      }
      control.className = "modal-input";
      control.dataset.customId = input.custom_id;
      field.append(control);
      form.append(field);
      fields.push([input, control]);
    }
  }
  const error = Object.assign(document.createElement("div"), { className: "modal-error", role: "alert" });
  const buttons = document.createElement("div");
  buttons.className = "modal-buttons";
  const cancel = Object.assign(document.createElement("button"), { type: "button", className: "button s2", textContent: "Cancel" });
  cancel.addEventListener("click", closeModal);
  const submit = Object.assign(document.createElement("button"), { type: "submit", className: "button s1", textContent: "Submit" });
  buttons.append(cancel, submit);
  form.append(error, buttons);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const [input, control] of fields) {
      values[input.custom_id] = input.type === 4 ? control.value : Array.from(control.selectedOptions, (o) => o.value);
    }
    submit.disabled = true;
    try {
      await api("/api/modal", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: state.name, interaction_id: interactionId, values }),
      });
      closeModal();
    } catch (failure) {
      error.textContent = failure.message;
      submit.disabled = false;
    }
  });
  backdrop.addEventListener("keydown", (event) => { if (event.key === "Escape") closeModal(); });
  backdrop.append(form);
  document.body.append(backdrop);
  const first = form.querySelector(".modal-input");
  if (first) first.focus();
}

function closeModal() {
  const open = document.getElementById("modal-backdrop");
  if (open) open.remove();
}

function renderComponents(message, components, parent) {
  for (const component of components || []) {
    switch (component.type) {
      case 1: {
        const row = document.createElement("div");
        row.className = "action-row";
        renderComponents(message, component.components, row);
        parent.append(row);
        break;
      }
      case 2: parent.append(renderButton(message, component)); break;
      case 3: case 5: case 6: case 7: case 8: parent.append(renderSelect(message, component)); break;
      case 9: { // section: text plus an accessory
        const section = document.createElement("div");
        renderComponents(message, component.components, section);
        if (component.accessory) renderComponents(message, [component.accessory], section);
        parent.append(section);
        break;
      }
      case 10: {
        const text = document.createElement("div");
        text.className = "content";
        text.innerHTML = markdown(component.content);
        parent.append(text);
        break;
      }
      case 11: { // thumbnail
        const media = component.media || {};
        parent.append(imageElement(proxied(media.url), media, "thumbnail"));
        break;
      }
      case 12: { // media gallery: Discord tiles up to 10 images; one alone keeps the attachment's box
        const gallery = document.createElement("div");
        const items = component.items || [];
        gallery.className = `media-gallery items-${Math.min(items.length, 4)}`;
        for (const item of items) gallery.append(imageElement(proxied((item.media || {}).url), item.media || {}, "gallery-image"));
        parent.append(gallery);
        break;
      }
      case 14: {
        const hr = document.createElement("div");
        hr.className = "separator";
        parent.append(hr);
        break;
      }
      case 17: {
        const box = document.createElement("div");
        box.className = "container";
        if (component.accent_color != null) box.style.borderLeftColor = `#${component.accent_color.toString(16).padStart(6, "0")}`;
        renderComponents(message, component.components, box);
        parent.append(box);
        break;
      }
      default: break;
    }
  }
}

function proxied(url) {
  if (!url) return "";
  if (url.startsWith("attachment://")) return "";
  return url.replace(/^https?:\/\/127\.0\.0\.1:\d+(?=\/attachments\/)/, "");
}

function renderEmbed(message, embed) {
  const el = document.createElement("div");
  el.className = "embed";
  if (embed.color != null) el.style.borderLeftColor = `#${embed.color.toString(16).padStart(6, "0")}`;
  const byName = (url) => {
    const match = /^attachment:\/\/(.+)$/.exec(url || "");
    const attachment = match && message.attachments.find((a) => a.filename === match[1]);
    return attachment ? attachment.url : proxied(url);
  };
  if (embed.thumbnail && embed.thumbnail.url) {
    const img = document.createElement("img");
    img.className = "embed-thumbnail";
    img.src = byName(embed.thumbnail.url);
    el.append(img);
  }
  if (embed.author && embed.author.name) {
    const author = document.createElement("div");
    author.className = "embed-author";
    author.textContent = embed.author.name;
    el.append(author);
  }
  if (embed.title) {
    const title = document.createElement("div");
    title.className = "embed-title";
    title.innerHTML = embed.url ? `<a href="${escapeHtml(embed.url)}" target="_blank" rel="noreferrer">${markdown(embed.title)}</a>` : markdown(embed.title);
    el.append(title);
  }
  if (embed.description) {
    const description = document.createElement("div");
    description.className = "embed-description";
    description.innerHTML = markdown(embed.description);
    el.append(description);
  }
  if (embed.fields && embed.fields.length) {
    const fields = document.createElement("div");
    fields.className = "embed-fields";
    for (const field of embed.fields) {
      const f = document.createElement("div");
      f.className = `embed-field${field.inline ? " inline" : ""}`;
      f.innerHTML = `<div class="embed-field-name">${markdown(field.name)}</div><div class="embed-field-value">${markdown(field.value)}</div>`;
      fields.append(f);
    }
    el.append(fields);
  }
  if (embed.image && embed.image.url) {
    const img = document.createElement("img");
    img.className = "embed-image";
    img.src = byName(embed.image.url);
    el.append(img);
  }
  if ((embed.footer && embed.footer.text) || embed.timestamp) {
    const footer = document.createElement("div");
    footer.className = "embed-footer";
    footer.textContent = [embed.footer && embed.footer.text, embed.timestamp && formatTime(embed.timestamp)].filter(Boolean).join(" • ");
    el.append(footer);
  }
  return el;
}

// An image that opens full size when clicked. Fits Discord's 400x350 box; small images (the tiny model's 64 px) are
// enlarged up to 256 px, pixelated.
function imageElement(url, { width, height, filename } = {}, className = "attachment-image") {
  const img = document.createElement("img");
  img.className = className;
  img.src = url;
  img.alt = img.title = filename || url.split("/").pop();
  if (width && height) {
    let scale = Math.min(400 / width, 350 / height);
    if (scale > 1) scale = Math.min(scale, Math.max(1, 256 / Math.max(width, height)));
    img.width = Math.round(width * scale);
    img.height = Math.round(height * scale);
    if (scale > 1) img.style.imageRendering = "pixelated";
  }
  img.addEventListener("click", () => openLightbox(url));
  return img;
}

function renderAttachments(message) {
  const box = document.createElement("div");
  box.className = "attachments";
  const inEmbeds = new Set();
  for (const embed of message.embeds || []) {
    for (const key of ["image", "thumbnail"]) {
      const match = /^attachment:\/\/(.+)$/.exec((embed[key] && embed[key].url) || "");
      if (match) inEmbeds.add(match[1]);
    }
  }
  for (const attachment of message.attachments || []) {
    if (inEmbeds.has(attachment.filename)) continue;
    if ((attachment.content_type || "").startsWith("image/")) {
      const img = imageElement(attachment.url, attachment);
      if (/^preview\./.test(attachment.filename)) img.classList.add("preview");
      if (/^preview\./.test(attachment.filename)) {
        box.append(img);
      } else {
        // Every finished picture can be edited: paint where to repaint, then /edit it with that mask.
        const frame = document.createElement("div");
        frame.className = "attachment-frame";
        const edit = document.createElement("button");
        edit.type = "button";
        edit.className = "edit-picture";
        edit.textContent = "✏️ Edit";
        edit.title = "Paint over a part and repaint it (/edit)";
        edit.addEventListener("click", () => openMaskEditor(attachment));
        frame.append(img, edit);
        box.append(frame);
      }
    } else {
      const file = document.createElement("div");
      file.className = "file";
      file.innerHTML = `<span>📄</span><div><a href="${escapeHtml(attachment.url)}" target="_blank">${escapeHtml(attachment.filename)}</a>
        <div class="size">${formatSize(attachment.size || 0)}</div></div>`;
      box.append(file);
    }
  }
  return box;
}

function openLightbox(url) {
  const box = document.createElement("div");
  box.id = "lightbox";
  box.innerHTML = `<img src="${escapeHtml(url)}" alt="">`;
  box.addEventListener("click", () => box.remove());
  document.body.append(box);
}

// ------------------------------------------------------------------------------------------------ brush mask editor

// The mask is a canvas at the picture's own size: black = keep, white = repaint (what /edit's `mask` option takes).
// It lies over the picture with a screen blend, so painted strokes show as a light veil over what will change.
function openMaskEditor(attachment) {
  closeMaskEditor();
  const width = attachment.width || 512;
  const height = attachment.height || 512;
  const box = document.createElement("div");
  box.id = "mask-editor";
  box.setAttribute("role", "dialog");
  box.setAttribute("aria-label", "Edit a picture");
  box.innerHTML = `<div class="editor-panel">
      <div class="editor-title">Paint over what to repaint</div>
      <div class="editor-stage"><img alt="the picture"><canvas class="editor-mask"></canvas></div>
      <div class="editor-tools">
        <label>brush <input type="range" class="editor-brush" min="1" max="100" value="12"></label>
        <button type="button" class="editor-clear">Clear</button>
        <button type="button" class="editor-invert">Invert</button>
      </div>
      <label class="option-chip prompt-chip"><span>prompt</span>
        <input class="editor-prompt" placeholder="What to paint there" maxlength="1000"></label>
      <div class="editor-actions">
        <span class="editor-error" role="alert"></span>
        <button type="button" class="editor-cancel">Cancel</button>
        <button type="button" class="editor-submit">Edit</button>
      </div>
    </div>`;
  const stage = box.querySelector(".editor-stage");
  const img = box.querySelector("img");
  img.src = attachment.url;
  const scale = Math.min(512 / width, 512 / height, 8);
  stage.style.width = `${Math.round(width * scale)}px`;
  stage.style.height = `${Math.round(height * scale)}px`;
  const mask = box.querySelector(".editor-mask");
  mask.width = width;
  mask.height = height;
  const ctx = mask.getContext("2d");
  clearMask(ctx);

  let painting = false;
  let last = null;
  const brush = box.querySelector(".editor-brush");
  const at = (event) => {
    const rect = mask.getBoundingClientRect();
    return { x: (event.clientX - rect.left) * (width / rect.width), y: (event.clientY - rect.top) * (height / rect.height) };
  };
  const stroke = (from, to) => {
    // The brush size is a share of the picture's shorter side, so it feels the same on 64 px and 1024 px pictures.
    ctx.globalCompositeOperation = "source-over";
    ctx.strokeStyle = ctx.fillStyle = "#fff";
    ctx.lineCap = "round";
    ctx.lineWidth = Math.max(1, (Number(brush.value) / 200) * Math.min(width, height));
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  };
  mask.addEventListener("pointerdown", (event) => {
    painting = true;
    mask.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
  });
  mask.addEventListener("pointermove", (event) => {
    if (!painting) return;
    const point = at(event);
    stroke(last, point);
    last = point;
  });
  for (const end of ["pointerup", "pointercancel"]) mask.addEventListener(end, () => { painting = false; });
  box.querySelector(".editor-clear").addEventListener("click", () => clearMask(ctx));
  box.querySelector(".editor-invert").addEventListener("click", () => {
    ctx.globalCompositeOperation = "difference";
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.globalCompositeOperation = "source-over";
  });
  box.querySelector(".editor-cancel").addEventListener("click", closeMaskEditor);
  box.querySelector(".editor-submit").addEventListener("click", () => submitEdit(box, attachment, mask));
  box.addEventListener("keydown", (event) => { if (event.key === "Escape") closeMaskEditor(); });
  document.body.append(box);
  box.querySelector(".editor-prompt").focus();
}

function clearMask(ctx) {
  ctx.globalCompositeOperation = "source-over";
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
}

function closeMaskEditor() {
  const open = $("#mask-editor");
  if (open) open.remove();
}

async function submitEdit(box, attachment, mask) {
  const error = box.querySelector(".editor-error");
  const prompt = box.querySelector(".editor-prompt").value.trim();
  error.textContent = "";
  if (!prompt) {
    error.textContent = "Type what to paint first.";
    return;
  }
  const send = box.querySelector(".editor-submit");
  send.disabled = true;
  try {
    const picture = await (await fetch(attachment.url)).blob();
    const painted = await new Promise((resolve) => mask.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.set("prompt", prompt);
    form.set("image", picture, attachment.filename);
    form.set("mask", painted, "mask.png");
    await sendCommandForm("edit", form);
    closeMaskEditor();
  } catch (e) {
    error.textContent = e.message;
    send.disabled = false;
  }
}

function ephemeralNote(onDismiss) {
  const note = document.createElement("div");
  note.className = "ephemeral-note";
  note.innerHTML = `<svg class="eye" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 5C5.648 5 1 12 1 12s4.648 7 11 7 11-7 11-7-4.648-7-11-7Zm0 12a5 5 0 1 1 0-10 5 5 0 0 1 0 10Zm0-8a3 3 0 1 0 0 6 3 3 0 0 0 0-6Z"/></svg>
    <span>Only you can see this</span> • <a>Dismiss message</a>`;
  note.querySelector("a").addEventListener("click", onDismiss);
  return note;
}

function renderMessage(message) {
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

function scrollToBottom() {
  const box = $("#messages");
  box.scrollTop = box.scrollHeight;
}

function upsert(message) {
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

function remove(id) {
  state.messages.delete(id);
  const el = $("#message-list").querySelector(`.msg[data-id="${id}"]`);
  if (el) el.remove();
}

function notice(text) {
  const item = { id: `notice-${Date.now()}`, text, timestamp: new Date().toISOString() };
  const stick = nearBottom();
  $("#message-list").append(renderNotice(item));
  if (stick) scrollToBottom();
}

function setStatus(status, failure = null) {
  state.status = status;
  const el = $("#status");
  el.className = `status ${status}`;
  el.textContent = {
    online: "bot online", starting: "bot starting…", restarting: "bot restarting…", failed: "bot stopped",
    offline: "playground offline",
  }[status] || status;
  const banner = $("#banner");
  banner.classList.toggle("failed", status === "failed");
  if (status === "online") {
    banner.hidden = true;
  } else if (status === "failed" && failure) {
    // A start-up error: the bot is not restarted until the config file changes or Retry is pressed.
    banner.hidden = false;
    banner.replaceChildren();
    const message = document.createElement("div");
    message.className = "failure-message";
    message.textContent = `The bot could not start: ${failure.message}`;
    const fix = document.createElement("div");
    fix.className = "failure-fix";
    fix.textContent = `${failure.fix} Saving the config file starts it again, or:`;
    const retry = document.createElement("button");
    retry.id = "retry";
    retry.type = "button";
    retry.textContent = "Retry";
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      try { await api("/api/retry", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }); } catch (error) { notice(error.message); retry.disabled = false; }
    });
    fix.append(" ", retry);
    banner.append(message, fix);
    if (failure.log) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "the end of the bot's log";
      const pre = document.createElement("pre");
      pre.textContent = failure.log;
      details.append(summary, pre);
      banner.append(details);
    }
  } else {
    banner.hidden = false;
    banner.textContent = {
      starting: "The bot is starting (loading the model). Your messages so far stay here.",
      restarting: "The bot process stopped and is being restarted. History and buttons keep working once it is back.",
      offline: "Lost the connection to the playground; reconnecting…",
    }[status] || status;
  }
}

function renderMembers() {
  const bots = $("#member-bots"), people = $("#member-people");
  bots.replaceChildren();
  people.replaceChildren();
  const entries = Object.entries(state.users).filter(([id, user]) => user.name !== "owner" || id === (state.me && state.me.id));
  for (const [id, user] of entries) {
    const row = document.createElement("div");
    row.className = "member" + (state.me && id === state.me.id ? " me" : "");
    row.append(avatar({ id, name: user.name, bot: user.bot }, "small"));
    const name = document.createElement("span");
    name.className = "member-name";
    name.textContent = user.name;
    row.append(name);
    if (user.bot) {
      row.insertAdjacentHTML("beforeend", '<span class="bot-tag">APP</span>');
      bots.append(row);
    } else {
      people.append(row);
    }
  }
  $("#people-title").textContent = `People — ${people.children.length}`;
}

// ------------------------------------------------------------------------------------------------ server

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = {};
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// A command with its pictures, as a multipart form (one field per option). The server takes a multipart upload only
// with the X-Imagebot header, which another site's form cannot send.
function sendCommandForm(command, form) {
  form.set("name", state.name);
  form.set("command", command);
  return api("/api/command", { method: "POST", headers: { "X-Imagebot": "1" }, body: form });
}

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

async function click(messageId, customId, el, values) {
  el.classList.add("busy");
  try {
    await api("/api/click", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: state.name, message_id: messageId, custom_id: customId, values }),
    });
  } catch (error) {
    notice(error.message);
  } finally {
    setTimeout(() => el.classList.remove("busy"), 600);
  }
}

async function messageCommand(messageId, command, el) {
  el.classList.add("busy");
  try {
    await api("/api/message-command", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: state.name, message_id: messageId, command }),
    });
  } catch (error) {
    notice(error.message);
  } finally {
    setTimeout(() => el.classList.remove("busy"), 600);
  }
}

// /describe with the picture attached in the composer's image chip.
async function describeAttached() {
  const error = $("#composer-error");
  error.textContent = "";
  const file = $("#image").files[0];
  if (!file) {
    error.textContent = "Attach a picture first (the image chip), then press /describe.";
    return;
  }
  const form = new FormData();
  form.set("image", file);
  try {
    await sendCommandForm("describe", form);
    $("#image").value = "";
    updateFileName($("#image"));
  } catch (e) {
    error.textContent = e.message;
  }
}

async function runCommand(command, options = {}) {
  try {
    await api("/api/command", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: state.name, command, options }),
    });
  } catch (error) {
    notice(error.message);
  }
}

// "/settings me private:true count:2" -> {command: "settings me", options: {private: "true", count: "2"}}: the words
// before the first "name:" are the command (with its subcommand), each "name:" takes the text up to the next one.
function parseCommandLine(text) {
  const line = ` ${text.trim().replace(/^\//, "")}`;
  const first = line.search(/\s[\w-]+:/);
  const command = (first < 0 ? line : line.slice(0, first)).trim();
  const options = {};
  if (first >= 0) {
    for (const match of line.slice(first).matchAll(/\s([\w-]+):(.*?)(?=\s[\w-]+:|$)/g)) options[match[1]] = match[2].trim();
  }
  return { command, options };
}

async function runCommandLine(event) {
  event.preventDefault();
  const input = $("#command-line");
  const { command, options } = parseCommandLine(input.value);
  if (!command) return;
  await runCommand(command, options);
  input.value = "";
}

// ------------------------------------------------------------------------------------------------ composer

const autocomplete = { timer: null, items: [], active: -1, request: 0 };

function showChoices(choices) {
  autocomplete.items = choices;
  autocomplete.active = choices.length ? 0 : -1;
  const box = $("#ac-items");
  box.replaceChildren();
  if (!choices.length) box.innerHTML = '<div class="ac-empty">No styles match.</div>';
  choices.forEach((choice, index) => {
    const item = document.createElement("div");
    item.className = "ac-item" + (index === 0 ? " active" : "");
    item.setAttribute("role", "option");
    item.dataset.value = choice.value;
    const [name, ...rest] = choice.name.split(" — ");
    item.innerHTML = `<b>${escapeHtml(name)}</b>${rest.length ? ` <span class="desc">— ${escapeHtml(rest.join(" — "))}</span>` : ""}`;
    item.addEventListener("mousedown", (event) => { event.preventDefault(); pickChoice(index); });
    box.append(item);
  });
  $("#autocomplete").hidden = false;
}

function hideChoices() {
  $("#autocomplete").hidden = true;
  autocomplete.active = -1;
}

function pickChoice(index) {
  const choice = autocomplete.items[index];
  if (choice) $("#style").value = choice.value;
  hideChoices();
}

function queryChoices() {
  clearTimeout(autocomplete.timer);
  autocomplete.timer = setTimeout(async () => {
    const request = ++autocomplete.request;
    const query = new URLSearchParams({ name: state.name, prompt: $("#prompt").value, style: $("#style").value });
    try {
      const data = await api(`/api/autocomplete?${query}`);
      if (request === autocomplete.request && document.activeElement === $("#style")) showChoices(data.choices);
    } catch (error) {
      $("#composer-error").textContent = error.message;
    }
  }, 150);
}

async function queryModels() {
  // /imagine's model option, autocompleted by the bot like Discord's client would: offered as the field's datalist.
  const query = new URLSearchParams({ name: state.name, prompt: $("#prompt").value, model: $("#model").value, focused: "model" });
  try {
    const data = await api(`/api/autocomplete?${query}`);
    $("#model-choices").replaceChildren(...data.choices.map((choice) => {
      const option = document.createElement("option");
      option.value = choice.value;
      option.label = choice.name;
      return option;
    }));
  } catch (error) {
    $("#composer-error").textContent = error.message;
  }
}

function moveChoice(step) {
  const items = $("#ac-items").querySelectorAll(".ac-item");
  if (!items.length) return;
  autocomplete.active = (autocomplete.active + step + items.length) % items.length;
  items.forEach((item, i) => item.classList.toggle("active", i === autocomplete.active));
  items[autocomplete.active].scrollIntoView({ block: "nearest" });
}

function blending() {
  return $("#composer").dataset.command === "blend";
}

function switchCommand() {
  // /imagine and /blend share the composer: each shows only its own options.
  $("#composer").dataset.command = blending() ? "imagine" : "blend";
  $("#command").textContent = `/${$("#composer").dataset.command}`;
  $("#prompt").placeholder = blending() ? "Words to mix in (optional)" : "What to draw";
  $("#composer-error").textContent = "";
}

function commandForm() {
  // Only the shown command's options go, and no empty file fields.
  const form = new FormData();
  const fields = blending() ? ["prompt", "model", "weights"]
    : ["prompt", "style", "model", "negative", "aspect", "seed", "count", "reference_weight"];
  for (const id of fields) form.set(id, $(`#${id}`).value);
  const files = blending() ? ["images"] : ["image", "reference"];
  for (const id of files) for (const file of $(`#${id}`).files) form.append(id, file);
  return form;
}

async function submit(event) {
  event.preventDefault();
  const error = $("#composer-error");
  error.textContent = "";
  if (!blending() && !$("#prompt").value.trim()) {
    error.textContent = "Type a prompt first.";
    $("#prompt").focus();
    return;
  }
  const form = commandForm();
  const send = $("#send");
  send.disabled = true;
  try {
    await sendCommandForm($("#composer").dataset.command, form);
    for (const id of ["prompt", "style", "model", "negative", "seed", "reference_weight", "weights"]) $(`#${id}`).value = "";
    for (const id of ["image", "reference", "images"]) {
      $(`#${id}`).value = "";
      updateFileName($(`#${id}`));
    }
  } catch (e) {
    error.textContent = e.message;
  } finally {
    send.disabled = false;
    $("#prompt").focus();
  }
}

function updateFileName(input) {
  const files = [...input.files];
  const label = input.closest(".file-chip").querySelector(".file-name");
  label.textContent = files.length ? files.map((file) => file.name).join(", ") : (input.multiple ? "attach 2–5…" : "attach…");
  input.closest(".file-chip").classList.toggle("has-file", files.length > 0);
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
  $("#composer").addEventListener("submit", submit);
  $("#style").addEventListener("input", queryChoices);
  $("#model").addEventListener("focus", queryModels);
  $("#model").addEventListener("input", queryModels);
  $("#style").addEventListener("focus", queryChoices);
  $("#style").addEventListener("blur", () => setTimeout(hideChoices, 100));
  $("#style").addEventListener("keydown", (event) => {
    if ($("#autocomplete").hidden) return;
    if (event.key === "ArrowDown") { event.preventDefault(); moveChoice(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); moveChoice(-1); }
    else if (event.key === "Enter" || event.key === "Tab") {
      if (autocomplete.active >= 0) { event.preventDefault(); pickChoice(autocomplete.active); }
    } else if (event.key === "Escape") hideChoices();
  });
  for (const id of ["image", "reference", "images"]) $(`#${id}`).addEventListener("change", () => updateFileName($(`#${id}`)));
  $("#composer").dataset.command = "imagine";
  $("#command").addEventListener("click", switchCommand);
  for (const button of document.querySelectorAll(".shortcut[data-command]")) {
    button.addEventListener("click", () => runCommand(button.dataset.command));
  }
  $("#command-form").addEventListener("submit", runCommandLine);
  $("#describe").addEventListener("click", describeAttached);
  connect();
}

init();
