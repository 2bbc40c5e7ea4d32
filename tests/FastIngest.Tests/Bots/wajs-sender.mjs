// A bot's sending side built on the npm library whatsapp-api-js, pointed at FastIngest instead of Meta. The library
// has no base-URL option: its ponyfill.fetch rewrites https://graph.facebook.com to FastIngest's Graph-compatible
// route, and everything else (the token as a bearer, the bodies, reading Meta's answer) is the library's own code.
// Usage: node wajs-sender.mjs FASTINGEST_URL PHONE_NUMBER_ID TOKEN CUSTOMER INBOUND_WAMID
// Prints one JSON line: what each call returned, {"text","template","read","typing","reply"}.
import { WhatsAppAPI } from "whatsapp-api-js";
import { Text, Template, Language } from "whatsapp-api-js/messages";

const [base, phone, token, customer, inbound] = process.argv.slice(2);
const Whatsapp = new WhatsAppAPI({
  token,
  appSecret: "unused-here",
  v: "v23.0",
  ponyfill: {
    fetch: (url, init) => fetch(String(url).replace("https://graph.facebook.com", `${base}/graph`), init),
  },
});

const results = {};
results.text = await Whatsapp.sendMessage(phone, { phone: customer }, new Text("Hello from whatsapp-api-js"));
results.template = await Whatsapp.sendMessage(phone, { phone: customer }, new Template("order_update", new Language("en_US")));
results.read = await Whatsapp.markAsRead(phone, inbound);
results.typing = await Whatsapp.markAsRead(phone, inbound, "text");
results.reply = await Whatsapp.sendMessage(phone, { phone: customer }, new Text("Replying to you"), inbound);
process.stdout.write(JSON.stringify(results) + "\n");
