// Connection state recovery latency: alice's transport is closed, bob sends MISSED messages
// (acked), then alice reconnects; measured: reconnect() → CONNECT (recovered) and
// reconnect() → the last missed message handled. Repeated ROUNDS times per MISSED value.
// MISSED must stay under RECOVERY_MAX_EVENTS (1000) minus the room's presence events, or the
// log no longer reaches back: a fresh connection (reported as recovered false, after 30 s).
// URL=http://127.0.0.1:5000 MISSED=20,200,500 ROUNDS=5 node bench/recovery_latency.mjs → one JSON line.
import { io } from "socket.io-client";

const url = process.env.URL;
const sizes = (process.env.MISSED || "20,200,500").split(",").map(Number);
const rounds = Number(process.env.ROUNDS || 5);
const open = (name) =>
  new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 50 });
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function round(roomId, missed) {
  const alice = await open();
  const bob = await open();
  await alice.emitWithAck("join_room", { roomId, username: "alice" });
  await bob.emitWithAck("join_room", { roomId, username: "bob" });
  const first = new Promise((r) => alice.once("receive_message", r));
  await bob.emitWithAck("send_message", { roomId, message: "before" });
  await first; // alice holds an offset
  alice.io.reconnection(false);
  const gone = new Promise((r) => alice.once("disconnect", r));
  const cleaned = new Promise((r) => bob.on("online_users", (u) => u.length === 1 && r())); // her server noticed
  alice.io.engine.close();
  await gone;
  await cleaned;
  const inflight = [];
  for (let i = 0; i < missed; i++) {
    inflight.push(bob.emitWithAck("send_message", { roomId, message: `m${i}` }));
    if (inflight.length >= 20) await inflight.shift();
  }
  await Promise.all(inflight);
  let got = 0;
  const last = `m${missed - 1}`;
  const all = new Promise((r) => alice.on("receive_message", (m) => { got++; if (m.message === last) r(); }));
  const t0 = performance.now();
  const connected = new Promise((r) => alice.once("connect", () => r(performance.now())));
  alice.io.reconnection(true);
  alice.connect();
  const tConnect = await connected;
  await Promise.race([all, new Promise((r) => setTimeout(r, 30000))]);
  const tAll = performance.now();
  const result = { recovered: alice.recovered === true, connect_ms: tConnect - t0, all_ms: tAll - t0, got };
  alice.close();
  bob.close();
  return result;
}

const out = { scenario: "recovery-latency", rounds };
for (const missed of sizes) {
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await round(`rec-${missed}-${i}-${Date.now()}`, missed));
  out[`missed_${missed}`] = {
    recovered: runs.every((r) => r.recovered && r.got === missed),
    connect_ms_p50: +median(runs.map((r) => r.connect_ms)).toFixed(1),
    all_missed_ms_p50: +median(runs.map((r) => r.all_ms)).toFixed(1),
    all_missed_ms_max: +Math.max(...runs.map((r) => r.all_ms)).toFixed(1),
  };
}
console.log(JSON.stringify(out));
process.exit(0);
