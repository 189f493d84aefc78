// Try AI: stream the answer from the session API and show it as it arrives. Each model is
// sent to its provider's API on the member's session: Anthropic's Messages API
// (POST /api/v1/w/<slug>/messages), OpenAI's chat completions
// (/api/v1/w/<slug>/openai/chat/completions) or Gemini's streamGenerateContent
// (/api/v1/w/<slug>/gemini/models/<model>:streamGenerateContent?alt=sse), each in its own
// request and event shape; the gateway ends every stream with its "gateway" event (who paid,
// credits charged). Without JavaScript the form posts and the page shows the whole answer.
"use strict";

(function () {
  const form = document.getElementById("prompt-form");
  if (!form || !window.fetch || !window.ReadableStream || !window.AbortController) return;
  const send = form.querySelector("[data-send]");
  const stop = form.querySelector("[data-stop]");
  if (!send) return;
  const $ = (id) => document.getElementById(id);
  const whoPays = $("who-pays");
  const status = $("stream-status");
  const answer = $("live-answer");
  const answerText = $("live-answer-text");
  const errorBox = $("live-error");
  const SOURCES = { byok: "Workspace key", platform: "AI credits" };
  let controller = null;

  function field(name) { return form.elements.namedItem(name); }

  function provider() {
    const option = field("model").selectedOptions[0];
    return (option && option.dataset.provider) || "anthropic";
  }

  // The prompt as the chosen model's provider takes it: { url, body }, or null if incomplete.
  function request() {
    const prompt = field("prompt").value;
    const maxTokens = Number.parseInt(field("max_tokens").value, 10);
    if (!prompt.trim() || !Number.isInteger(maxTokens) || maxTokens < 1) return null;
    const model = field("model").value;
    const system = field("system").value.trim() ? field("system").value : "";
    if (provider() === "openai") {
      const messages = system ? [{ role: "system", content: system }] : [];
      messages.push({ role: "user", content: prompt });
      return {
        url: form.dataset.openaiUrl,
        body: {
          model, messages, max_completion_tokens: maxTokens, stream: true,
          stream_options: { include_usage: true },
        },
      };
    }
    if (provider() === "gemini") {
      const body = {
        contents: [{ role: "user", parts: [{ text: prompt }] }],
        generationConfig: { maxOutputTokens: maxTokens },
      };
      if (system) body.systemInstruction = { parts: [{ text: system }] };
      return { url: form.dataset.geminiUrl.replace("MODEL", encodeURIComponent(model)), body };
    }
    const body = { model, max_tokens: maxTokens, messages: [{ role: "user", content: prompt }], stream: true };
    if (system) body.system = system;
    return { url: form.dataset.streamUrl, body };
  }

  // What one event of each provider's stream adds: text, token counts, a request id, an error.
  const READERS = {
    anthropic(event) {
      const data = event.data;
      if (event.name === "message_start" && data.message) {
        return { model: data.message.model, input: data.message.usage && data.message.usage.input_tokens };
      }
      if (event.name === "content_block_delta" && data.delta && data.delta.type === "text_delta") {
        return { text: data.delta.text };
      }
      if (event.name === "message_delta" && data.usage) return { output: data.usage.output_tokens };
      return {};
    },
    openai(event) {
      const data = event.data;
      const text = (data.choices || []).map((c) => (c.delta && c.delta.content) || "").join("");
      const read = { model: data.model, text };
      if (data.usage) Object.assign(read, { input: data.usage.prompt_tokens, output: data.usage.completion_tokens });
      return read;
    },
    gemini(event) {
      const data = event.data;
      const parts = ((data.candidates || [])[0] || {}).content;
      const text = ((parts && parts.parts) || []).map((p) => p.text || "").join("");
      const read = { model: data.modelVersion, text, requestId: data.responseId };
      const usage = data.usageMetadata;
      if (usage) Object.assign(read, { input: usage.promptTokenCount, output: usage.candidatesTokenCount });
      return read;
    },
  };

  function setBusy(busy) {
    send.disabled = busy;
    stop.hidden = !busy;
    stop.disabled = !busy;
    answerText.setAttribute("aria-busy", busy ? "true" : "false");
    if (busy) status.dataset.busy = "true";
    else delete status.dataset.busy;
  }

  function showError(message) {
    $("live-error-message").textContent = message;
    errorBox.hidden = false;
    errorBox.focus();
    errorBox.scrollIntoView({ block: "start" });
  }

  // Who pays next, the balance and, with the key now invalid, why sending is off: asked of
  // the server after every request, so the page never needs a reload to tell the truth.
  async function refreshStatus(requestId) {
    const params = new URLSearchParams({ model: field("model").value });
    if (requestId) params.set("request_id", requestId);
    let data;
    try {
      const response = await fetch(`${whoPays.dataset.statusUrl}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return null;
      data = await response.json();
    } catch (e) { return null; }
    whoPays.innerHTML = data.who_pays_html;
    const blocked = $("send-blocked");
    if (data.credential_source === "none") {
      blocked.innerHTML = data.send_blocked_html;
      blocked.hidden = false;
      send.disabled = true;
      send.setAttribute("aria-describedby", "send-blocked");
    } else if (!controller) {
      blocked.hidden = true;
      send.disabled = false;
      send.removeAttribute("aria-describedby");
    }
    return data;
  }

  // A stopped stream never gets the gateway's trailer: ask for the request's row, which the
  // server writes once it has noticed the closed connection and closed the provider's stream.
  async function showStoppedCharge(requestId) {
    const credits = $("live-credits");
    credits.textContent = "counting what was produced before Stop…";
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const data = await refreshStatus(requestId);
      if (data && data.request) {
        const row = data.request;
        credits.textContent = `${Number(row.credits_charged).toLocaleString("en")} (for what was produced before Stop)`;
        credits.dataset.liveCreditsCharged = String(row.credits_charged);
        $("live-tokens").textContent = `${row.input_tokens.toLocaleString("en")} in, ${row.output_tokens.toLocaleString("en")} out`;
        return;
      }
      await new Promise((resolve) => { window.setTimeout(resolve, 500); });
    }
    credits.textContent = "charged for what was produced before Stop (see Usage)";
  }

  function paidWith(source) {
    if (!source) return;
    $("live-paid-with").textContent = SOURCES[source] || source;
    $("live-paid-with").dataset.liveCredentialSource = source;
  }

  // One server-sent event: "event: name\ndata: {...}".
  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return null;
    try { return { name, data: JSON.parse(data.join("\n")) }; } catch (e) { return null; }
  }

  async function stream({ url, body }) {
    const model = body.model || field("model").value;
    const read = READERS[provider()];
    controller = new AbortController();
    const state = { words: 0, input: null, output: null, settled: false, failed: false };
    document.querySelectorAll("[data-answer-source=server]").forEach((el) => { el.hidden = true; });
    errorBox.hidden = true;
    answerText.textContent = "";
    $("live-credits").textContent = "counted when the answer ends";
    delete $("live-credits").dataset.liveCreditsCharged;
    $("live-tokens").textContent = "";
    $("live-model").textContent = model;
    paidWith("");
    setBusy(true);
    status.textContent = "Sending… the answer appears here as it is written.";
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          "X-CSRFToken": field("csrfmiddlewaretoken").value,
        },
        body: JSON.stringify(body),
        credentials: "same-origin",
        signal: controller.signal,
      });
    } catch (error) {
      setBusy(false);
      controller = null;
      if (error.name === "AbortError") {
        // The user's choice, not a failure: no error card.
        status.textContent = "Stopped before the answer began; nothing was charged.";
        refreshStatus();
      } else {
        status.textContent = "";
        showError("The server could not be reached. Check your connection and send again.");
      }
      return;
    }
    if (!response.ok || !(response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
      let message = `The server answered ${response.status}.`;
      let type = "";
      try {
        const error = (await response.json()).error;
        message = error.message || message;
        type = error.type || "";
      } catch (e) { /* not JSON */ }
      setBusy(false);
      controller = null;
      status.textContent = "";
      showError(message);
      // The key may have been found invalid meanwhile (409 llm_key_invalid): say who pays now.
      refreshStatus().then((data) => {
        if (type === "llm_key_invalid" && data && data.send_blocked_html) {
          $("live-error-message").innerHTML = data.send_blocked_html;
        }
      });
      return;
    }
    let requestId = response.headers.get("request-id") || response.headers.get("x-request-id");
    answer.hidden = false;
    paidWith(response.headers.get("X-Credential-Source"));
    status.textContent = "Answering…";

    const settle = (data) => {
      if (data.credential_source) paidWith(data.credential_source);
      if (data.credits_charged !== undefined && data.credits_charged !== null) {
        state.settled = true;
        $("live-credits").textContent = Number(data.credits_charged).toLocaleString("en");
        $("live-credits").dataset.liveCreditsCharged = String(data.credits_charged);
      }
    };
    const handle = (event) => {
      const data = event.data;
      if (event.name === "gateway" || event.name === "message_stop") {
        settle(data);
      } else if (event.name === "error" || data.error) {
        // The gateway's own error event, or the provider's in its stream shape.
        state.failed = true;
        const error = data.error || data;
        showError(error.message || "The answer broke off.");
      } else {
        const got = read(event);
        if (got.model) $("live-model").textContent = got.model;
        if (got.text) { answerText.append(got.text); state.words += 1; }
        if (got.input !== undefined && got.input !== null) state.input = got.input;
        if (got.output !== undefined && got.output !== null) state.output = got.output;
        if (got.requestId) requestId = got.requestId;
      }
      if (state.input !== null || state.output !== null) {
        $("live-tokens").textContent = `${state.input ?? "?"} in, ${state.output ?? "…"} out`;
      }
    };

    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let stopped = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const blocks = buffer.split(/\r?\n\r?\n/);
        buffer = blocks.pop();
        blocks.forEach((block) => { const event = parseEvent(block); if (event) handle(event); });
      }
      if (buffer.trim()) { const event = parseEvent(buffer); if (event) handle(event); }
      status.textContent = state.failed ? "The answer broke off." : "Answer complete.";
      if (!state.settled) $("live-credits").textContent = "see Usage";
    } catch (error) {
      if (error.name === "AbortError") {
        status.textContent = "Stopped.";
        stopped = true;
      } else {
        showError("The connection broke before the answer ended.");
      }
    } finally {
      const hadFocus = document.activeElement === stop;
      setBusy(false);
      controller = null;
      if (hadFocus) answer.focus();
    }
    if (stopped && requestId) await showStoppedCharge(requestId);
    else await refreshStatus();
  }

  form.addEventListener("submit", (event) => {
    const prompt = request();
    if (!prompt) return; // let the server say what is missing
    event.preventDefault();
    if (controller || send.disabled) return;
    stream(prompt);
  });
  // Who pays, and whether sending is on, follow the chosen model's provider.
  field("model").addEventListener("change", () => { if (!controller) refreshStatus(); });
  stop.addEventListener("click", () => { if (controller) controller.abort(); });
})();
