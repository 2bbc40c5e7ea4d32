// A bot built on the npm library whatsapp-api-js (its stock node:http middleware), as a tenant's Forward:Url in
// the tests. It verifies X-Hub-Signature-256 the way whatsapp-api-js does (over escapeUnicode(body)) and answers
// whatever handle_post answers: 200, 401 for a bad signature, 500 for what it cannot handle (any change without
// value.metadata). Each request is reported on stdout as one JSON line: {"eventId","status"}.
// Usage: node wajs-bot.mjs APP_SECRET   (prints "listening PORT" first)
import { createServer } from "node:http";
import { WhatsAppAPI } from "whatsapp-api-js/middleware/node-http";

const secret = process.argv[2];
const Whatsapp = new WhatsAppAPI({ token: "unused-token", appSecret: secret, webhookVerifyToken: "v" });
Whatsapp.on.message = () => {};
Whatsapp.on.status = () => {};

const server = createServer(async (request, response) => {
  const eventId = request.headers["x-fastingest-event-id"] ?? null;
  const status = request.method === "POST" ? await Whatsapp.handle_post(request) : 405;
  response.statusCode = status;
  response.end();
  process.stdout.write(JSON.stringify({ eventId, status }) + "\n");
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`listening ${server.address().port}\n`));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
