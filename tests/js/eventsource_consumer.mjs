// Consumes a stream with the `eventsource` npm package (an EventSource nobody here wrote):
//   node tests/js/eventsource_consumer.mjs <url> <count>
// Prints one JSON line per thing that happens: {"open": true}, {"id": ..., "event": ...}
// for each message, {"error": ...} when the connection is lost (the package reconnects by
// itself, sending Last-Event-ID), {"serverError": body} for the service's own final
// `event: error` message; it exits once <count> messages came (or after a minute).
import { EventSource } from "eventsource";

const [url, count] = [process.argv[2], Number(process.argv[3])];
const say = (what) => process.stdout.write(`${JSON.stringify(what)}\n`);
let received = 0;
const source = new EventSource(url);
source.onopen = () => say({ open: true });
source.onmessage = (message) => {
  say({ id: message.lastEventId, event: JSON.parse(message.data) });
  received += 1;
  if (received >= count) {
    source.close();
    process.exit(0);
  }
};
source.addEventListener("error", (error) => {
  if (error.data) {
    say({ serverError: JSON.parse(error.data) });
    source.close();
    process.exit(3);
  }
  say({ error: String(error.message || error.code || "connection lost") });
});
setTimeout(() => {
  say({ timeout: true, received });
  process.exit(2);
}, 60_000);
