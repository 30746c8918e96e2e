// Connection state recovery as socket.io-client 4.8 does it by itself.
//
// Usage: node recovery_flow.mjs <url of process A> <url of process B> [<pid of A to SIGKILL> or - [<room> [<transport>]]]
// (room "broken": the app fails to put the socket back; the flow stops after the reconnect)
// alice connects to A, bob to B (the same URL for one process); alice's transport is closed
// (engine.close(): what a network blip does), she reconnects to B. Prints one JSON line.
import { io } from "socket.io-client";

const [urlA, urlB, killPid, room = "r", transport = "websocket"] = process.argv.slice(2);
const WAIT_MS = 10000;
const out = {};

function open(url) {
  const socket = io(url, { transports: [transport], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  socket.log = [];
  socket.onAny((event, ...args) => socket.log.push([event, ...args]));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}
const once = (socket, event) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });
const ack = (socket, ...args) => socket.timeout(WAIT_MS).emitWithAck(...args);
// Resolves once bob has seen `text` (the barrier: what alice must have by then).
const seen = (socket, text) =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + WAIT_MS;
    const check = () => {
      if (socket.log.some(([, p]) => p && p.text === text)) resolve();
      else if (Date.now() > deadline) reject(new Error(`${text} not received within ${WAIT_MS} ms`));
      else setTimeout(check, 10);
    };
    check();
  });
// Closes alice's transport and waits until her server has saved the session (it saves
// after its disconnect clean-up; a broadcast from bob to the room, acknowledged, comes after it).
async function blip(alice, bob, nextUrl) {
  if (nextUrl) {
    alice.io.uri = nextUrl;
    alice.io.opts.port = new URL(nextUrl).port;
  }
  const disconnected = once(alice, "disconnect");
  alice.io.engine.close();
  return (await disconnected)[0];
}

async function main() {
  const alice = await open(urlA);
  const bob = await open(urlB);
  out.firstRecovered = alice.recovered;
  out.pid = alice._pid;
  await ack(alice, "join", room);
  await ack(bob, "join", room);
  await ack(bob, "bcast", room, "m1");
  await seen(alice, "m1");
  out.before = alice.log;
  const sid = alice.id;
  alice.log = [];
  // alice's socket is kept from reconnecting until bob has sent what she must miss
  alice.io.reconnection(false);
  out.reason = await blip(alice, bob, urlB);
  await new Promise((resolve) => setTimeout(resolve, 500)); // her server notices the closed transport
  if (killPid && killPid !== "-") process.kill(Number(killPid), "SIGKILL");
  await ack(bob, "bcast", room, "m2");
  await ack(bob, "others", room, "m3");
  await ack(bob, "skip", room, "not for alice", sid);
  const connected = once(alice, "connect");
  alice.io.reconnection(true);
  alice.connect();
  await connected;
  out.recovered = alice.recovered;
  out.sameSid = alice.id === sid;
  out.servedBy = await ack(alice, "pid");
  if (room === "broken") {
    await ack(alice, "join", room); // what Chillout's implicit join does on the next event
    await ack(bob, "bcast", room, "m4");
    await seen(alice, "m4");
    out.after = alice.log;
    console.log(JSON.stringify(out));
    process.exit(0);
  }
  await ack(bob, "bcast", room, "m4");
  await seen(alice, "m4");
  out.after = alice.log;
  out.bobLog = bob.log;

  // A pid the server does not know: an ordinary new connection.
  alice._pid = "not-a-session";
  alice.log = [];
  alice.io.reconnection(false);
  await blip(alice, bob);
  const again = once(alice, "connect");
  alice.io.reconnection(true);
  alice.connect();
  await again;
  out.unknownRecovered = alice.recovered;
  out.unknownNewSid = alice.id !== sid;

  // A client that says goodbye leaves no session behind.
  const pid = alice._pid;
  alice.disconnect();
  const back = once(alice, "connect");
  alice.connect();
  await back;
  out.goodbyeRecovered = alice.recovered;
  out.goodbyeSamePid = alice._pid === pid;
  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err), ...out }));
  process.exit(1);
});
