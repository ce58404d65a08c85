// A message's components as Discord draws them: action rows, buttons, selects, sections, text, galleries, containers.
import { click } from "./api.js";
import { markdown } from "./format.js";
import { imageElement, mediaElement, proxied } from "./media.js";

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

export function selectOptions(select, component) {
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

export function renderComponents(message, components, parent) {
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
        for (const item of items) gallery.append(mediaElement(proxied((item.media || {}).url), item.media || {}, "gallery-image"));
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
