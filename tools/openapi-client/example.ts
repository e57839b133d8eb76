// A client of the HTTP API written only against the types generated from docs/openapi.yaml
// (`npm run generate`: openapi-typescript → api.d.ts) and openapi-fetch, run against a live
// stack by scripts/fuzz-api.sh. It compiles only if the document names the routes, bodies,
// parameters and answers it uses, and it fails (exit 1) if the stack answers otherwise.
//
//   CRUDDUR_API_URL   the stack (default http://127.0.0.1:4567)
//   CRUDDUR_TOKEN     a bearer token: `target/debug/cruddur token andrewbrown`
//   CRUDDUR_TO        the handle to message (default bayko)
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

// Node's, declared here rather than pulling in @types/node for one variable.
declare const process: { env: Record<string, string | undefined> };

type InboxItem = components["schemas"]["InboxItem"];

const baseUrl = process.env.CRUDDUR_API_URL ?? "http://127.0.0.1:4567";
const token = process.env.CRUDDUR_TOKEN;
const to = process.env.CRUDDUR_TO ?? "bayko";
if (!token) throw new Error("set CRUDDUR_TOKEN (cruddur token <handle>)");

const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`example: ${what}`);
}

// The public card, without a token.
const anonymous = createClient<paths>({ baseUrl });
const card = await anonymous.GET("/api/users/{handle}/short", {
  params: { path: { handle: `@${to}` } },
});
check(card.data?.handle === to, `the card of @${to}: ${card.response.status}`);

// A message to that user; a 429 says how long to wait (Retry-After), once.
const body = { message: `hello from the generated client ${new Date().toISOString()}`, handle: to };
let sent = await api.POST("/api/messages", { body });
if (sent.response.status === 429) {
  const wait = Number(sent.response.headers.get("retry-after") ?? "1");
  await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  sent = await api.POST("/api/messages", { body });
}
check(sent.data !== undefined, `sending: ${sent.response.status} ${JSON.stringify(sent.error)}`);
const created = sent.data;

// The conversation's newest page shows it.
const page = await api.GET("/api/messages/{message_group_uuid}", {
  params: { path: { message_group_uuid: created.message_group_uuid }, query: { limit: 5 } },
});
check(
  page.data?.some((message) => message.uuid === created.uuid) === true,
  "the conversation shows the message",
);

// The inbox follows the message asynchronously (the stream moves the row): wait, up to 10 s,
// until the newest row is this conversation's.
const deadline = Date.now() + 10_000;
for (;;) {
  const { data, response } = await api.GET("/api/message_groups", { params: { query: { limit: 1 } } });
  check(data !== undefined, `the inbox: ${response.status}`);
  if (data[0]?.uuid === created.message_group_uuid) {
    check(data[0].kind === "direct" && data[0].message === created.message, "the newest row");
    break;
  }
  check(Date.now() < deadline, "the inbox did not show the conversation within 10 s");
  await new Promise((resolve) => setTimeout(resolve, 200));
}

// Then a page at a time: x-next-cursor until the last page.
const inbox: InboxItem[] = [];
let cursor: string | undefined;
do {
  const { data, response } = await api.GET("/api/message_groups", {
    params: { query: { limit: 1, cursor } },
  });
  check(data !== undefined, `the inbox: ${response.status}`);
  inbox.push(...data);
  cursor = response.headers.get("x-next-cursor") ?? undefined;
} while (cursor);
check(inbox.length > 1, "the seeded inbox has more than one conversation");

// A refusal is typed too: the union of the operation's documented error bodies.
const refused = await api.GET("/api/message_groups", { params: { query: { limit: 0 } } });
const codes: readonly string[] = Array.isArray(refused.error) ? refused.error : [];
check(refused.response.status === 400 && codes[0] === "limit_invalid", "limit 0 is refused");

console.log(
  `example: sent ${created.uuid} to @${to}, read it back, paged ${inbox.length} inbox rows one by one, limit 0 refused`,
);
