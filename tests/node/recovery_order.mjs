// Room broadcasts emitted at once from several processes: every client gets them in the
// order of their offsets (what recovery's "exactly once" rests on).
//
// Usage: node recovery_order.mjs <count> <url>... : one sender and one listener per URL;
// each sender bursts <count> broadcasts into the room at once. Prints one JSON line:
// per listener, the offsets it got in arrival order.
import { io } from "socket.io-client";

const [count, ...urls] = process.argv.slice(2);
const WAIT_MS = 20000;
const open = (url) =>
  new Promise((resolve, reject) => {
    const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
    socket.got = [];
    socket.on("msg", (payload, offset) => socket.got.push([payload.text, offset]));
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
const ack = (socket, ...args) => socket.timeout(WAIT_MS).emitWithAck(...args);

const senders = await Promise.all(urls.map(open));
const listeners = await Promise.all(urls.map(open));
for (const socket of [...senders, ...listeners]) await ack(socket, "join", "order");
await Promise.all(senders.map((socket, i) => ack(socket, "burst", "order", `p${i}-`, Number(count))));
const total = Number(count) * urls.length;
const deadline = Date.now() + WAIT_MS;
while (listeners.some((s) => s.got.length < total) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
console.log(JSON.stringify({ total, listeners: listeners.map((s) => s.got) }));
process.exit(0);
