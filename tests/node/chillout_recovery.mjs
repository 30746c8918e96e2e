// Connection state recovery against the real Chillout server, as socket.io-client 4.8 does it.
//
// Usage: node chillout_recovery.mjs <url A> <url B> <roomId> <transport> <mode> [<pid of A to SIGKILL> or -]
// mode "blip": alice (on A, in the call) loses her transport (engine.close(), what a network
//   blip does) while bob (on B) sends 20 messages, deletes one, edits one and types; alice's
//   last send before the blip is re-sent with its clientOffset after the reconnect (its ack
//   was lost); alice reconnects (to B) by herself with {pid, offset}.
// mode "late <seconds>": alice reconnects only after <seconds>: a fresh connection.
// Prints one JSON line for tests/realtime/test_recovery.py.
import { io } from "socket.io-client";

const [urlA, urlB, roomId, transport, mode, arg] = process.argv.slice(2);
const WAIT_MS = 15000;
const out = {};

function open(url, name) {
  const socket = io(url, { transports: [transport], forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  socket.log = []; // every event with ALL its arguments (the offset is the last one)
  socket.onAny((event, ...args) => socket.log.push([event, ...args]));
  // What the web client's handlers see: the first argument only.
  socket.handled = [];
  socket.on("receive_message", (message) => socket.handled.push(message));
  socket.name = name;
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
const ack = async (socket, event, payload) => {
  const answer = await socket.timeout(WAIT_MS).emitWithAck(event, payload);
  if (!answer || answer.ok !== true) throw new Error(`${socket.name} ${event}: ${JSON.stringify(answer)}`);
  return answer;
};
// Resolves once `socket` has received an event matching `match` (polled; fails after WAIT_MS).
const seen = (socket, what, match) =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + WAIT_MS;
    const check = () => {
      const found = socket.log.find(match);
      if (found) resolve(found);
      else if (Date.now() > deadline) reject(new Error(`${socket.name}: ${what} not received within ${WAIT_MS} ms`));
      else setTimeout(check, 10);
    };
    check();
  });
const online = (socket, names) =>
  seen(socket, `online_users ${names}`, ([e, p]) => e === "online_users" && JSON.stringify(p) === JSON.stringify(names));

async function main() {
  const alice = await open(urlA, "alice");
  const bob = await open(urlB, "bob");
  out.firstRecovered = alice.recovered;
  out.pid = alice._pid ?? null; // the CONNECT answer's pid
  await ack(alice, "join_room", { roomId, username: "alice" });
  await ack(bob, "join_room", { roomId, username: "bob" });
  await online(alice, ["alice", "bob"]);
  await ack(alice, "join_call", { roomId, username: "alice" });
  await seen(bob, "alice's call notice", ([e]) => e === "call_notification");
  await ack(bob, "send_message", { roomId, username: "bob", message: "m0" });
  await seen(alice, "m0", ([e, p]) => e === "receive_message" && p.message === "m0");
  const sid = alice.id;
  out.sid = sid;
  out.before = alice.log;
  alice.log = [];
  alice.handled = [];
  bob.log = [];

  alice.io.reconnection(false); // kept away until bob has sent what she must miss
  if (urlB !== urlA) {
    alice.io.uri = urlB;
    alice.io.opts.port = new URL(urlB).port;
  }
  const disconnected = once(alice, "disconnect");
  // Her last send goes out just before the blip; she never sees its ack.
  alice.emit("send_message", { roomId, username: "alice", message: "sent at the blip", clientOffset: "alice-1" });
  alice.io.engine.close();
  out.reason = (await disconnected)[0];
  // Her server noticed: her clean-up (call notice, presence) reached bob.
  await seen(bob, "alice's user_left_call", ([e, p]) => e === "user_left_call" && p.socketId === sid);
  await online(bob, ["bob"]);

  if (mode === "late") {
    await new Promise((resolve) => setTimeout(resolve, Number(arg) * 1000));
  } else {
    const sent = [];
    for (let i = 1; i <= 20; i++) {
      sent.push((await ack(bob, "send_message", { roomId, username: "bob", message: `m${i}` })).message);
    }
    await ack(bob, "delete_message", { roomId, messageId: sent[4]._id });
    await ack(bob, "typing", { roomId, typing: true });
    await ack(bob, "edit_message", { roomId, messageId: sent[6]._id, message: "m7 edited" });
    await ack(bob, "typing", { roomId, typing: false });
    out.sent = sent;
    if (arg && arg !== "-") process.kill(Number(arg), "SIGKILL");
  }

  const connected = once(alice, "connect");
  alice.io.reconnection(true);
  alice.connect();
  await connected;
  out.recovered = alice.recovered;
  out.sameSid = alice.id === sid;
  if (mode !== "late") {
    // Re-sent after the lost ack: the server answers the original, stores nothing new.
    out.resendAck = await ack(alice, "send_message", { roomId, username: "alice", message: "sent at the blip", clientOffset: "alice-1" });
  } else {
    await ack(alice, "join_room", { roomId, username: "alice" });
  }
  await online(bob, ["bob", "alice"]);
  // Is alice in the call? bob joins it: she must not be among its participants.
  await ack(bob, "join_call", { roomId, username: "bob" });
  out.bobParticipants = (await seen(bob, "call_participants", ([e]) => e === "call_participants"))[1];
  await ack(bob, "send_message", { roomId, username: "bob", message: "after" });
  await seen(alice, "after", ([e, p]) => e === "receive_message" && p.message === "after");
  out.after = alice.log;
  out.handled = alice.handled;
  out.bobLog = bob.log;
  if (process.env.HOLD_MS) {
    // Both stay connected a while (e.g. past the reaping of a killed process), then talk again.
    await new Promise((resolve) => setTimeout(resolve, Number(process.env.HOLD_MS)));
    await ack(bob, "send_message", { roomId, username: "bob", message: "after the hold" });
    await seen(alice, "after the hold", ([e, p]) => e === "receive_message" && p.message === "after the hold");
    out.bobOnlineAfterHold = bob.log.filter(([e]) => e === "online_users").map(([, p]) => p);
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err), ...out }));
  process.exit(1);
});
