// Drives a Chillout server with socket.io-client 4.8, the library the web client uses.
//
// Usage: node client_flow.mjs <server url> <roomId> <websocket|polling>
// Prints one JSON line: what each step received, for tests/realtime/test_node_client.py to
// check. Exits non-zero (with {"error": ...}) when something expected does not arrive.
import { io } from "socket.io-client";

const [url, roomId, transport] = process.argv.slice(2);
const WAIT_MS = 10000;

// Buffers every event per name, so nothing is lost between two awaits.
function record(socket) {
  const queues = new Map();
  const waiters = new Map();
  socket.onAny((event, payload) => {
    const waiting = waiters.get(event);
    if (waiting && waiting.length) waiting.shift()(payload);
    else queues.set(event, [...(queues.get(event) || []), payload]);
  });
  socket.next = (event) => {
    const queued = queues.get(event);
    if (queued && queued.length) return Promise.resolve(queued.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT_MS} ms`)), WAIT_MS);
      waiters.set(event, [...(waiters.get(event) || []), (payload) => { clearTimeout(timer); resolve(payload); }]);
    });
  };
  return socket;
}

function open() {
  const socket = record(io(url, { transports: [transport], forceNew: true, reconnection: false }));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

const ack = (socket, event, payload) => socket.timeout(WAIT_MS).emitWithAck(event, payload);

async function main() {
  const alice = await open();
  const bob = await open();
  const out = { transport, aliceTransport: alice.io.engine.transport.name, alice: alice.id, bob: bob.id };

  out.joinAck = await ack(alice, "join_room", { roomId, username: "alice" });
  await ack(bob, "join_room", { roomId, username: "bob" });
  await alice.next("online_users");
  out.onlineUsers = await alice.next("online_users");

  out.sendAck = await ack(alice, "send_message", { roomId, username: "alice", message: "hello from node" });
  out.aliceReceived = await alice.next("receive_message");
  out.bobReceived = await bob.next("receive_message");

  out.deleteAck = await ack(alice, "delete_message", { roomId, messageId: out.sendAck.message._id });
  out.aliceDeleted = await alice.next("message_deleted");
  out.bobDeleted = await bob.next("message_deleted");

  out.aliceJoinCallAck = await ack(alice, "join_call", { roomId, username: "alice" });
  out.aliceParticipants = await alice.next("call_participants");
  out.bobCallNotification = await bob.next("call_notification");
  out.bobUserJoined = await bob.next("user_joined_call");
  await ack(bob, "join_call", { roomId, username: "bob" });
  out.bobParticipants = await bob.next("call_participants");
  out.aliceUserJoined = await alice.next("user_joined_call");

  // As the web client: the member already in the call offers to the newcomer.
  await ack(alice, "offer", { to: bob.id, offer: { type: "offer", sdp: "v=0 alice" }, username: "alice" });
  out.bobOffer = await bob.next("offer");
  await ack(bob, "answer", { to: alice.id, answer: { type: "answer", sdp: "v=0 bob" }, username: "bob" });
  out.aliceAnswer = await alice.next("answer");
  await ack(alice, "ice_candidate", { to: bob.id, candidate: { candidate: "candidate:1", sdpMid: "0" } });
  out.bobCandidate = await bob.next("ice_candidate");

  out.leaveCallAck = await ack(alice, "leave_call", { roomId, username: "alice" });
  out.bobCallEnded = await bob.next("call_ended_notification");
  out.bobUserLeft = await bob.next("user_left_call");

  alice.disconnect();
  bob.disconnect();
  return out;
}

main().then(
  (out) => { console.log(JSON.stringify(out)); process.exit(0); },
  (error) => { console.log(JSON.stringify({ error: String(error && error.message ? error.message : error) })); process.exit(1); },
);
