// The brush mask editor: paint over a picture where to repaint it, and send it as an /edit.
import { sendCommandForm } from "./api.js";
import { $ } from "./format.js";

// The mask is a canvas at the picture's own size: black = keep, white = repaint (what /edit's `mask` option takes).
// It lies over the picture with a screen blend, so painted strokes show as a light veil over what will change.
export function openMaskEditor(attachment) {
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
