// The official TypeScript SDK's basic calls against the gateway, one scenario per run
// (tests/served_app/test_typescript_sdk_served.py). Prints one JSON line: what the SDK
// returned or raised, and the HTTP requests it sent (counted by a wrapped fetch).
"use strict";
const { Anthropic } = require("@anthropic-ai/sdk");

const MODEL = "claude-sonnet-5";
const HI = [{ role: "user", content: "one two three four five" }];
const sent = [];

function client(options = {}) {
  return new Anthropic({
    baseURL: process.env.GATEWAY_URL,
    apiKey: process.env.GATEWAY_TOKEN,
    fetch: (url, init) => {
      sent.push(`${init?.method ?? "GET"} ${new URL(url).pathname}`);
      return fetch(url, init);
    },
    ...options,
  });
}

const text = (message) => message.content.map((block) => block.text ?? "").join("");

const scenarios = {
  async create() {
    const message = await client().messages.create({ model: MODEL, max_tokens: 32, messages: HI });
    return { text: text(message), stop_reason: message.stop_reason };
  },
  async stream() {
    const events = [];
    const stream = client().messages.stream({ model: MODEL, max_tokens: 32, messages: HI });
    stream.on("streamEvent", (event) => events.push(event.type));
    const message = await stream.finalMessage();
    return { text: text(message), stop_reason: message.stop_reason, events };
  },
  async models() {
    const ids = [];
    for await (const model of client().models.list({ limit: 2 })) ids.push(model.id);
    return { ids };
  },
  // With the SDK's default retries (2): a refusal marked x-should-retry: false is not retried.
  async unauthorized() {
    await client({ apiKey: "byok_notatoken_0000000000000000" }).models.list();
  },
  async overloaded() {
    await client({ maxRetries: 0 }).messages.create({ model: MODEL, max_tokens: 32, messages: HI });
  },
};

async function main() {
  const started = Date.now();
  let outcome;
  try {
    outcome = { result: (await scenarios[process.argv[2]]()) ?? null };
  } catch (error) {
    if (!(error instanceof Anthropic.APIError)) throw error;
    outcome = {
      error: { class: error.constructor.name, status: error.status, type: error.type },
    };
  }
  outcome.sent = sent;
  outcome.seconds = (Date.now() - started) / 1000;
  process.stdout.write(JSON.stringify(outcome) + "\n");
}

main();
