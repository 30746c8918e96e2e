// A small stand-in for the web client's room page (contract §5), served from another origin
// than the server: history over REST, one websocket-only socket, media uploaded with fetch()
// as multipart (filename "blob") and announced with url = server origin + response.url.
// Query: ?server=<server origin>&room=<roomId>&user=<username>.
"use strict";

const params = new URLSearchParams(location.search);
const SERVER = params.get("server");
const ROOM = params.get("room");
const USER = params.get("user");
const list = document.getElementById("messages");

// Each media element records what became of it in data-state: "ready" (image decoded /
// audio can play) or "error"; the test waits on that attribute.
function mediaElement(message) {
  if (message.type === "image") {
    const img = document.createElement("img");
    img.alt = "image";
    img.addEventListener("load", () => { img.dataset.state = img.naturalWidth > 0 ? "ready" : "error"; });
    img.addEventListener("error", () => { img.dataset.state = "error"; });
    img.src = message.url;
    return img;
  }
  const audio = document.createElement("audio");
  audio.controls = true;
  audio.preload = "auto";
  audio.addEventListener("canplay", () => { audio.dataset.state = "ready"; }, { once: true });
  audio.addEventListener("error", () => { audio.dataset.state = "error"; });
  audio.src = message.url;
  return audio;
}

function render(message) {
  const item = document.createElement("li");
  item.dataset.id = message._id;
  item.dataset.type = message.type;
  if (message.type === "image" || message.type === "voice") {
    item.append(mediaElement(message));
  } else {
    item.textContent = `${message.username}: ${message.message}`;
  }
  list.append(item);
}

const socket = io(SERVER, { transports: ["websocket"] });
for (const event of ["receive_message", "receive_image_message", "receive_voice_message"]) {
  socket.on(event, render);
}
socket.on("online_users", (names) => {
  document.getElementById("online").replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    item.textContent = name;
    return item;
  }));
});

function emitWithAck(event, payload) {
  return new Promise((resolve) => socket.emit(event, payload, resolve));
}

async function loadHistory() {
  const response = await fetch(`${SERVER}/api/room/${encodeURIComponent(ROOM)}`);
  const room = await response.json();
  room.messages.forEach(render);
}

async function upload(kind, blob) {
  const form = new FormData();
  form.append(kind, blob);  // a Blob is sent with filename "blob", as the web client's are
  form.append("username", USER);
  const response = await fetch(`${SERVER}/api/room/${encodeURIComponent(ROOM)}/${kind}`, { method: "POST", body: form });
  const body = await response.json();
  if (!response.ok) throw new Error(`${kind} upload: ${response.status} ${JSON.stringify(body)}`);
  return SERVER + body.url;
}

// What the web client's recorder does: MediaRecorder on a stream, audio/webm (Opus).
// The stream is an oscillator's instead of a microphone's.
async function recordVoice(milliseconds) {
  const context = new AudioContext();
  const oscillator = context.createOscillator();
  const destination = context.createMediaStreamDestination();
  oscillator.connect(destination);
  oscillator.start();
  const recorder = new MediaRecorder(destination.stream, { mimeType: "audio/webm;codecs=opus" });
  const chunks = [];
  recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
  const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve));
  recorder.start();
  await new Promise((resolve) => setTimeout(resolve, milliseconds));
  recorder.stop();
  await stopped;
  oscillator.stop();
  await context.close();
  return new Blob(chunks, { type: "audio/webm" });
}

window.chillout = {
  ready: (async () => {
    await new Promise((resolve) => socket.connected ? resolve() : socket.once("connect", resolve));
    await loadHistory();
    return emitWithAck("join_room", { roomId: ROOM, username: USER });
  })(),
  transport: () => socket.io.engine.transport.name,
  async sendImage(base64) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const url = await upload("image", new Blob([bytes], { type: "image/png" }));
    return emitWithAck("send_image_message", { roomId: ROOM, username: USER, url });
  },
  async sendVoice(milliseconds) {
    const url = await upload("voice", await recordVoice(milliseconds));
    return emitWithAck("send_voice_message", { roomId: ROOM, username: USER, url });
  },
};
