// Pictures and files in a message: attachments, embeds, the full-size lightbox.
import { escapeHtml, formatSize, formatTime, markdown } from "./format.js";
import { openMaskEditor } from "./mask-editor.js";

export function proxied(url) {
  if (!url) return "";
  if (url.startsWith("attachment://")) return "";
  return url.replace(/^https?:\/\/127\.0\.0\.1:\d+(?=\/attachments\/)/, "");
}

export function renderEmbed(message, embed) {
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
export function imageElement(url, { width, height, filename } = {}, className = "attachment-image") {
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

// A video (an /animate result): played inline, looping and muted, as Discord's clients play an MP4 attachment.
export function videoElement(url, { filename } = {}, className = "attachment-video") {
  const video = document.createElement("video");
  video.className = className;
  video.src = url;
  video.controls = video.loop = video.muted = video.autoplay = video.playsInline = true;
  video.title = filename || url.split("/").pop();
  return video;
}

// A picture or a video, by the file's name (a media gallery item carries no content type).
export function mediaElement(url, media = {}, className = "gallery-image") {
  return /\.mp4$/i.test(url || "") ? videoElement(url, media, className) : imageElement(url, media, className);
}

export function renderAttachments(message) {
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
    if ((attachment.content_type || "").startsWith("video/") || /\.mp4$/i.test(attachment.filename)) {
      box.append(videoElement(attachment.url, attachment));
    } else if ((attachment.content_type || "").startsWith("image/")) {
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
