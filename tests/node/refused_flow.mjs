// What socket.io-client 4.8 sees when the server refuses its engine.io handshake (the
// per-IP cap), and that it gets in by itself once a slot is free.
//
// Usage: node refused_flow.mjs <server url> <websocket|polling>
// Prints one JSON line at the first connect_error (what the error carries), then keeps the
// library's own reconnection going (short fixed delay) and prints a second line once it is
// connected: how many connect_error events came before. Exits non-zero with {"error": ...}
// when nothing happens for WAIT_MS.
import { io } from "socket.io-client";

const [url, transport] = process.argv.slice(2);
const WAIT_MS = 60000;

function described(err) {
  const context = err.context || {};
  return {
    event: "connect_error",
    message: err.message,
    type: err.type,
    // polling: the HTTP status; websocket: the `ws` error event, whose message names it
    description: typeof err.description === "number" ? err.description : (err.description && err.description.message),
    status: typeof context.status === "number" ? context.status : null,
    body: typeof context.responseText === "string" ? context.responseText : null,
  };
}

const socket = io(url, {
  transports: [transport],
  forceNew: true,
  reconnection: true,
  reconnectionDelay: 50,
  reconnectionDelayMax: 50,
  randomizationFactor: 0,
});
let errors = 0;
let timer = setTimeout(() => fail("nothing within the wait"), WAIT_MS);

function fail(error) {
  console.log(JSON.stringify({ error }));
  process.exit(1);
}

socket.on("connect_error", (err) => {
  errors += 1;
  if (errors === 1) {
    console.log(JSON.stringify(described(err)));
    clearTimeout(timer);
    timer = setTimeout(() => fail("never connected"), WAIT_MS);
  }
});
socket.on("connect", () => {
  clearTimeout(timer);
  console.log(JSON.stringify({ event: "connect", errors, transport: socket.io.engine.transport.name }));
  // no process.exit: Node ends once the engine.io CLOSE has gone out (a polling POST), so
  // the server releases the slot at once rather than at its ping timeout
  socket.disconnect();
});
