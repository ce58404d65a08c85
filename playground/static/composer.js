// The composer: /imagine and /blend with their options and the bot's autocomplete, /describe, the shortcuts and
// the any-command line.
import { api, runCommand, sendCommandForm, state } from "./api.js";
import { $, escapeHtml } from "./format.js";

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

// "/settings me private:true count:2" -> {command: "settings me", options: {private: "true", count: "2"}}: the words
// before the first "name:" are the command (with its subcommand), each "name:" takes the text up to the next one.
export function parseCommandLine(text) {
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
    const query = new URLSearchParams({ name: state.name, locale: state.locale, prompt: $("#prompt").value, style: $("#style").value });
    try {
      const data = await api(`/api/autocomplete?${query}`);
      if (request === autocomplete.request && document.activeElement === $("#style")) showChoices(data.choices);
    } catch (error) {
      $("#composer-error").textContent = error.message;
    }
  }, 150);
}

async function queryModels() {
  await queryAutocomplete("model");
}

async function queryLoras() {
  await queryAutocomplete("lora");
}

async function queryAutocomplete(focused) {
  // /imagine's model and lora options, autocompleted by the bot like Discord's client would: the field's datalist.
  const query = new URLSearchParams({ name: state.name, locale: state.locale, prompt: $("#prompt").value, model: $("#model").value, lora: $("#lora").value, focused });
  try {
    const data = await api(`/api/autocomplete?${query}`);
    $(`#${focused}-choices`).replaceChildren(...data.choices.map((choice) => {
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
    : ["prompt", "style", "model", "negative", "aspect", "seed", "count", "reference_weight", "lora"];
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
    for (const id of ["prompt", "style", "model", "negative", "seed", "reference_weight", "lora", "weights"]) $(`#${id}`).value = "";
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

export function initComposer() {
  $("#composer").addEventListener("submit", submit);
  $("#style").addEventListener("input", queryChoices);
  $("#model").addEventListener("focus", queryModels);
  $("#model").addEventListener("input", queryModels);
  $("#lora").addEventListener("focus", queryLoras);
  $("#lora").addEventListener("input", queryLoras);
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
}
