// What surrounds the channel: the bot's status (with why it could not start) and the member list.
import { notice, postJson, state } from "./api.js";
import { $, avatar } from "./format.js";

export function setStatus(status, failure = null) {
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
      try { await postJson("/api/retry", {}); } catch (error) { notice(error.message); retry.disabled = false; }
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

export function renderMembers() {
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
