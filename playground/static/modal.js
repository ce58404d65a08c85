// Forms (modals) the bot opens in answer to this person's click.
import { postJson, state } from "./api.js";
import { selectOptions } from "./components.js";

// A form the bot opened in answer to this person's click: shown over the page until submitted or cancelled.
export function openModal(interactionId, modal) {
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
      await postJson("/api/modal", { name: state.name, locale: state.locale, interaction_id: interactionId, values });
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
