// The calm-rag page: one form, streamed through the OpenAI-compatible endpoint, so the stages show
// while the server works. Everything from the server is written with textContent, never as HTML.
"use strict";

const STAGES = ["retrieving", "translating", "sampling", "voting"];
const $ = (id) => document.getElementById(id);
let info = null;

function headers() {
  const key = $("api-key").value.trim();
  const result = { "Content-Type": "application/json" };
  if (key) result.Authorization = "Bearer " + key;
  return result;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return (body.error && body.error.message) || response.statusText;
  } catch (_) {
    return response.status + " " + response.statusText;
  }
}

async function loadInfo() {
  const response = await fetch("/v1/info", { headers: headers() });
  if (response.status === 401) {
    $("server-status").textContent = "This server needs an API key: enter it under Options.";
    $("options").open = true;
    return;
  }
  if (!response.ok) {
    $("server-status").textContent = "Server not ready: " + (await errorMessage(response));
    return;
  }
  info = await response.json();
  $("server-status").textContent = "Model " + info.model + " | voting across " + info.languages.join(", ") +
    " | " + info.samples + " samples per language | " + (info.index ? "index " + info.index : "no index");
  const names = Object.fromEntries(info.registry.map((entry) => [entry.code, entry.name]));
  $("lang").replaceChildren(el("option", "detect"));
  $("lang").firstChild.value = "";
  $("languages").replaceChildren();
  for (const entry of info.registry) {
    const option = el("option", entry.name + " (" + entry.code + ")");
    option.value = entry.code;
    $("lang").appendChild(option);
    const label = el("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = entry.code;
    box.checked = info.languages.includes(entry.code);
    label.append(box, " " + names[entry.code]);
    $("languages").appendChild(label);
  }
  $("index").replaceChildren();
  const choices = info.index ? [info.index, ...info.indexes.filter((name) => name !== info.index)] : ["", ...info.indexes];
  for (const name of choices) {
    const option = el("option", name || "none (zero-shot)");
    option.value = name;
    $("index").appendChild(option);
  }
  $("samples").placeholder = String(info.samples);
  $("top-k").placeholder = String(info.top_k);
  $("top-k").max = String(info.limits.max_top_k);
  $("samples").max = String(info.limits.max_samples);
}

function requestBody() {
  const question = $("question").value.trim();
  const body = { model: info ? info.model : "calm-rag", stream: true, messages: [{ role: "user", content: question }] };
  const choices = $("choices").value.split("\n").map((line) => line.trim()).filter(Boolean);
  if (choices.length) body.choices = choices;
  if ($("lang").value) body.lang = $("lang").value;
  const languages = [...$("languages").querySelectorAll("input:checked")].map((box) => box.value);
  if (info && languages.length && languages.join(",") !== info.languages.join(",")) body.languages = languages;
  if ($("samples").value) body.samples = Number($("samples").value);
  if ($("mode").value && choices.length) body.mode = $("mode").value;
  if ($("index").value && (!info || $("index").value !== info.index)) body.index = $("index").value;
  if ($("top-k").value && $("index").value) body.top_k = Number($("top-k").value);
  return body;
}

function showStages(current) {
  const list = $("stages");
  list.hidden = false;
  list.replaceChildren();
  const reached = STAGES.indexOf(current);
  STAGES.forEach((stage, position) => {
    const state = current === "done" || position < reached ? "done" : position === reached ? "active" : "";
    list.appendChild(el("li", stage, state));
  });
}

function renderVotes(answer) {
  const body = $("vote-table").querySelector("tbody");
  body.replaceChildren();
  const open = !("answer_text" in answer);
  for (const lang of answer.languages) {
    const row = document.createElement("tr");
    row.appendChild(el("td", lang));
    row.appendChild(el("td", (answer.translations || {})[lang] || ""));
    if (open) {
      row.appendChild(el("td", (answer.spans[lang] || []).map((span) => span || "-").join(" | ")));
      const rank = answer.language_majorities[lang];
      const cluster = rank === null || rank === undefined ? null : answer.clusters[rank];
      row.appendChild(el("td", cluster ? cluster.representative : "-", rank === 0 ? "agree" : "disagree"));
    } else {
      row.appendChild(el("td", (answer.votes[lang] || []).map((label) => label || "-").join(" ")));
      const majority = answer.language_majorities[lang];
      row.appendChild(el("td", majority || "-", majority && majority === answer.answer ? "agree" : "disagree"));
    }
    body.appendChild(row);
  }
}

function renderSources(answer) {
  const body = $("sources-table").querySelector("tbody");
  body.replaceChildren();
  (answer.sources || []).forEach((source, number) => {
    const row = document.createElement("tr");
    const text = source.text.length > 220 ? source.text.slice(0, 219) + "…" : source.text;
    [number + 1, source.score.toFixed(3), source.lang || "?", source.source, text]
      .forEach((value) => row.appendChild(el("td", value)));
    body.appendChild(row);
  });
  $("sources-table").hidden = !(answer.sources || []).length;
  $("no-sources").hidden = !!(answer.sources || []).length;
}

function renderAnswer(answer, content) {
  const box = $("answer");
  box.replaceChildren();
  box.className = "answer" + (answer.abstained ? " abstained" : "");
  const [headline, ...rest] = content.split("\n\n");
  box.appendChild(el("strong", headline));
  const explanation = rest.slice(0, -1).join("\n\n");
  if (explanation) box.appendChild(el("p", explanation));
  $("summary").textContent = (rest.length ? rest[rest.length - 1] + " | " : "") + answer.model + " (" +
    (answer.mode || "open question") + ") | " + answer.elapsed_s.toFixed(1) + " s";
  renderVotes(answer);
  renderSources(answer);
  $("result").hidden = false;
}

async function ask(event) {
  event.preventDefault();
  $("error").hidden = true;
  $("result").hidden = true;
  $("ask-button").disabled = true;
  localStorage.setItem("calm-rag-api-key", $("api-key").value);
  try {
    if (!info) await loadInfo();
    showStages(null);
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(requestBody()) });
    if (!response.ok) {
      showError(await errorMessage(response));
      return;
    }
    await readStream(response);
  } catch (error) {
    showError(String(error));
  } finally {
    $("ask-button").disabled = false;
  }
}

async function readStream(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n");
      if (!data || data === "[DONE]") continue;
      handleEvent(JSON.parse(data));
    }
  }
}

function handleEvent(chunk) {
  if (chunk.error) {
    showError(chunk.error.message);
    return;
  }
  if (chunk.calm_stage) showStages(chunk.calm_stage.stage);
  if (chunk.calm) {
    showStages("done");
    renderAnswer(chunk.calm, chunk.choices[0].delta.content || "");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = localStorage.getItem("calm-rag-api-key") || "";
  $("api-key").addEventListener("change", () => { info = null; loadInfo(); });
  $("ask-form").addEventListener("submit", ask);
  loadInfo().catch((error) => { $("server-status").textContent = String(error); });
});
