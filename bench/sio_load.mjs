// Socket.IO load generator for Chillout, with socket.io-client 4.8 (the web client's library).
//
//   SCENARIO=echo|echo-pair|burst|chat-closed|chat-open|fanout|fill|connections|churn|media URL=http://127.0.0.1:5000 \
//   PIDS=<server pid>,<db pid> node bench/sio_load.mjs
//
// URL may be a comma-separated list (several server processes sharing REDIS_URL): the
// sockets are spread over them round-robin, in the order they are opened, so a room's
// members (and the fanout room's 500 receivers) are split evenly between the processes.
//
// PROTOCOL=original: the original Node server, which answers no acks: a room is created by
// `GET /api/room/:id` first (as its web client does; a send to a room that does not exist is
// echoed as null), a join is confirmed by an `online_users` that names the joiner, a send
// by the sender's own `receive_message` echo.
//
// Prints one JSON line: the scenario's figures plus the CPU (cores) and RSS (MB) of each pid
// in PIDS over the measured phase, read from /proc. Started by bench/run.py, which owns the
// server and the database; run it by hand against any running server too.
import { io } from "socket.io-client";
import fs from "node:fs";

const env = process.env;
const URLS = (env.URL || "http://127.0.0.1:5000").split(",").filter(Boolean);
let opened = 0;
const SCENARIO = env.SCENARIO || "echo";
const DURATION = +(env.DURATION || 10) * 1000;
const ROOMS = +(env.ROOMS || 10);
const PER_ROOM = +(env.PER_ROOM || 10);
const RATE = +(env.RATE || 100); // chat-open: messages/s offered in total
const MEMBERS = +(env.MEMBERS || 500); // fanout: receivers
const WINDOW = +(env.WINDOW || 4); // fanout: sends in flight
const SOCKETS = +(env.SOCKETS || 2000); // connections
const CONNECTIONS_PER_ROOM = +(env.CONNECTIONS_PER_ROOM || 10); // connections: 1 gives a room per socket
const IDLE_SECONDS = +(env.IDLE_SECONDS || 0); // connections: then measure the server's CPU with every socket idle (pings only)
const CONCURRENCY = +(env.CONCURRENCY || 20); // churn
const SETTLE = +(env.SETTLE || 5) * 1000;
const ROOM_PREFIX = env.ROOM_PREFIX || `bench-${Date.now()}`;
const TRANSPORT = env.TRANSPORT || "websocket";
const PIDS = (env.PIDS || "").split(",").filter(Boolean).map(Number);
const EMPTY_ROOM = env.EMPTY_ROOM; // echo-pair: a room without history
const FULL_ROOM = env.FULL_ROOM; // echo-pair: a room prefilled with history
const MEDIA_CLIENTS = +(env.MEDIA_CLIENTS || 8);
const MEDIA_SIZES_MB = (env.MEDIA_SIZES_MB || "1,10").split(",").map(Number);
const MEDIA_ROUNDS = +(env.MEDIA_ROUNDS || 2);
const ORIGINAL = (env.PROTOCOL || "chillout") === "original";
const ACK_TIMEOUT_MS = 60000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (values, p) => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return +sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))].toFixed(2);
};

function procCpu(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (+fields[11] + +fields[12]) / 100;
}
function procRss(pid) {
  return +fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1] / 1024;
}
function meter() {
  const t0 = Date.now();
  const cpu0 = PIDS.map(procCpu);
  const rss0 = PIDS.map(procRss);
  const self0 = process.cpuUsage();
  return () => {
    const seconds = (Date.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    return {
      seconds: +seconds.toFixed(2),
      cpu: PIDS.map((pid, i) => +((procCpu(pid) - cpu0[i]) / seconds).toFixed(3)),
      rss_mb_before: rss0.map((v) => +v.toFixed(1)),
      rss_mb: PIDS.map((pid) => +procRss(pid).toFixed(1)),
      client_cpu: +((self.user + self.system) / 1e6 / seconds).toFixed(3),
    };
  };
}

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(URLS[opened++ % URLS.length], { transports: [TRANSPORT], forceNew: true, reconnection: false, timeout: 60000 });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
  });
}

async function connectMany(count, batch = 50) {
  const sockets = [];
  for (let i = 0; i < count; i += batch) {
    const group = [];
    for (let j = i; j < Math.min(count, i + batch); j++) group.push(connect());
    sockets.push(...(await Promise.all(group)));
  }
  return sockets;
}

// Resolves once `event` arrives on `socket` with a payload that `matches`; then `emit` is sent.
function emitUntil(socket, event, matches, emit) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${event} within ${ACK_TIMEOUT_MS} ms`));
    }, ACK_TIMEOUT_MS);
    const listener = (payload) => {
      if (!matches(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(payload);
    };
    socket.on(event, listener);
    emit();
  });
}

const roomsCreated = new Map();
function roomCreate(roomId) {
  if (!roomsCreated.has(roomId)) {
    roomsCreated.set(roomId, fetch(`${URLS[0]}/api/room/${encodeURIComponent(roomId)}`).then((r) => r.arrayBuffer()));
  }
  return roomsCreated.get(roomId);
}

async function join(socket, roomId, username) {
  if (!ORIGINAL) return socket.timeout(ACK_TIMEOUT_MS).emitWithAck("join_room", { roomId, username });
  await roomCreate(roomId);
  const names = await emitUntil(socket, "online_users", (names) => Array.isArray(names) && names.includes(username), () =>
    socket.emit("join_room", { roomId, username }),
  );
  return { ok: true, online: names.length };
}

// A send confirmed by its ack (Chillout) or by the sender's own echo (the original).
async function sendConfirmed(socket, payload) {
  if (!ORIGINAL) return socket.timeout(ACK_TIMEOUT_MS).emitWithAck("send_message", payload);
  const message = await emitUntil(socket, "receive_message", (m) => m && m.username === payload.username && m.message === payload.message, () =>
    socket.emit("send_message", payload),
  );
  return { ok: true, message };
}

// Every socket of a chat scenario: knows its own pending sends, counts every delivery.
function chatClient(socket, roomId, username, stats) {
  const pending = new Map();
  socket.on("receive_message", (message) => {
    stats.deliveries++;
    if (!message || message.username !== username) return;
    const sentAt = pending.get(message.message);
    if (sentAt === undefined) return;
    pending.delete(message.message);
    stats.latencies.push(performance.now() - sentAt);
    stats.echoes++;
  });
  let seq = 0;
  return {
    pending,
    send() {
      const text = `${username}:${seq++}`;
      pending.set(text, performance.now());
      stats.sent++;
      if (ORIGINAL) socket.emit("send_message", { roomId, username, message: text });
      else socket.emit("send_message", { roomId, username, message: text }, (ack) => {
        if (!ack || !ack.ok) stats.failed++;
      });
      return text;
    },
    waitEcho(text) {
      return new Promise((resolve) => {
        const check = () => (pending.has(text) ? setTimeout(check, 1) : resolve());
        check();
      });
    },
  };
}

async function chatRooms() {
  const total = ROOMS * PER_ROOM;
  const sockets = await connectMany(total);
  const stats = { sent: 0, echoes: 0, deliveries: 0, failed: 0, latencies: [] };
  const clients = [];
  for (let r = 0; r < ROOMS; r++) {
    for (let m = 0; m < PER_ROOM; m++) {
      const socket = sockets[r * PER_ROOM + m];
      const username = `u${r}-${m}`;
      const roomId = `${ROOM_PREFIX}-${r}`;
      await join(socket, roomId, username);
      clients.push(chatClient(socket, roomId, username, stats));
    }
  }
  return { sockets, clients, stats };
}

function closeAll(sockets) {
  sockets.forEach((s) => s.disconnect());
}

const scenarios = {
  async echo() {
    const [socket] = await connectMany(1);
    const stats = { sent: 0, echoes: 0, deliveries: 0, failed: 0, latencies: [] };
    await join(socket, `${ROOM_PREFIX}-echo`, "solo");
    const client = chatClient(socket, `${ROOM_PREFIX}-echo`, "solo", stats);
    for (let i = 0; i < 20; i++) await client.waitEcho(client.send()); // warm-up
    stats.latencies.length = 0;
    const done = meter();
    const stop = Date.now() + DURATION;
    while (Date.now() < stop) await client.waitEcho(client.send());
    const usage = done();
    closeAll([socket]);
    return { round_trips_per_s: +(stats.latencies.length / usage.seconds).toFixed(1), p50_ms: pct(stats.latencies, 0.5), p99_ms: pct(stats.latencies, 0.99), failed: stats.failed, ...usage };
  },

  // Send→echo p50 alternating between an empty and a prefilled room (blocks of 20), so
  // that machine noise hits both alike; CPU is split by phase.
  async "echo-pair"() {
    const [socket] = await connectMany(1);
    const rooms = { empty: EMPTY_ROOM, full: FULL_ROOM };
    const results = {};
    for (const [label, roomId] of Object.entries(rooms)) {
      const stats = { sent: 0, echoes: 0, deliveries: 0, failed: 0, latencies: [] };
      results[label] = { stats, cpu: PIDS.map(() => 0), seconds: 0 };
    }
    const stop = Date.now() + DURATION;
    const warm = Object.fromEntries(Object.keys(rooms).map((k) => [k, true]));
    while (Date.now() < stop) {
      for (const [label, roomId] of Object.entries(rooms)) {
        const r = results[label];
        await join(socket, roomId, "solo");
        socket.removeAllListeners("receive_message");
        const client = chatClient(socket, roomId, "solo", r.stats);
        if (warm[label]) { for (let i = 0; i < 10; i++) await client.waitEcho(client.send()); r.stats.latencies.length = 0; warm[label] = false; }
        const done = meter();
        for (let i = 0; i < 20; i++) await client.waitEcho(client.send());
        const usage = done();
        r.seconds += usage.seconds;
        usage.cpu.forEach((c, i) => (r.cpu[i] += c * usage.seconds));
      }
    }
    closeAll([socket]);
    const figures = {};
    for (const [label, r] of Object.entries(results)) {
      const n = r.stats.latencies.length;
      figures[label] = { round_trips: n, p50_ms: pct(r.stats.latencies, 0.5), p99_ms: pct(r.stats.latencies, 0.99), failed: r.stats.failed, cpu_ms_per_msg: r.cpu.map((c) => +((1000 * c) / Math.max(1, n)).toFixed(3)) };
    }
    return { ...figures, p50_ratio_full_over_empty: +(figures.full.p50_ms / figures.empty.p50_ms).toFixed(3) };
  },

  // One socket sends BURST messages into ROOM (BURST_WINDOW in flight), each confirmed by its
  // echo: history written through the server, as a chat writes it (bench/run.py history-fresh).
  async burst() {
    const [socket] = await connectMany(1);
    const stats = { sent: 0, echoes: 0, deliveries: 0, failed: 0, latencies: [] };
    await join(socket, env.ROOM, "burst");
    const client = chatClient(socket, env.ROOM, "burst", stats);
    const count = +(env.BURST || 1000), window = +(env.BURST_WINDOW || 20);
    const done = meter();
    let next = 0;
    await Promise.all(Array.from({ length: window }, async () => {
      while (next < count) { next++; await client.waitEcho(client.send()); }
    }));
    const usage = done();
    closeAll([socket]);
    return { sent: stats.sent, echoes: stats.echoes, failed: stats.failed, per_s: +(stats.echoes / usage.seconds).toFixed(1), ...usage };
  },

  // MEDIA_CLIENTS clients each upload one file of every size in MEDIA_SIZES_MB at once, then
  // all download them: aggregate MB/s per direction over MEDIA_ROUNDS rounds.
  async media() {
    // A real WAV (48 kHz stereo 16-bit, a 440 Hz tone: 10 MB is 55 s, under MAX_VOICE_SECONDS):
    // uploads are decoded, so a header followed by zeros is refused.
    const wav = (mb) => {
      const size = mb * 1024 * 1024;
      const data = new Uint8Array(size);
      const view = new DataView(data.buffer);
      const text = (at, s) => data.set(new TextEncoder().encode(s), at);
      text(0, "RIFF"); view.setUint32(4, size - 8, true); text(8, "WAVEfmt ");
      view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 2, true);
      view.setUint32(24, 48000, true); view.setUint32(28, 192000, true); view.setUint16(32, 4, true);
      view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, size - 44, true);
      for (let at = 44; at + 4 <= size; at += 4) {
        const sample = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (at - 44)) / 4 / 48000));
        view.setInt16(at, sample, true); view.setInt16(at + 2, sample, true);
      }
      return data;
    };
    const files = MEDIA_SIZES_MB.map((mb) => ({ mb, data: wav(mb) }));
        // MB/s counts the bytes of the transfers that succeeded (a refused upload moves nothing).
    const up = { seconds: 0, cpu: PIDS.map(() => 0), bytes: 0 }, down = { seconds: 0, cpu: PIDS.map(() => 0), bytes: 0 };
    let failed = 0;
    let rssPeak = PIDS.map(procRss);
    const sampler = setInterval(() => { rssPeak = PIDS.map((pid, i) => Math.max(rssPeak[i], procRss(pid))); }, 20);
    const addUsage = (acc, usage) => { acc.seconds += usage.seconds; usage.cpu.forEach((c, i) => (acc.cpu[i] += c * usage.seconds)); };
    for (let round = 0; round < MEDIA_ROUNDS; round++) {
      let done = meter();
      const urls = await Promise.all(
        Array.from({ length: MEDIA_CLIENTS }, async (_, c) => {
          const mine = [];
          for (const f of files) {
            const form = new FormData();
            form.append("username", `m${c}`);
            form.append("voice", new Blob([f.data], { type: "audio/wav" }), "blob.wav");
            const response = await fetch(`${URLS[0]}/api/room/${ROOM_PREFIX}-media${c}/voice`, { method: "POST", body: form });
            if (response.status !== 200) { failed++; await response.arrayBuffer(); continue; }
            mine.push({ url: (await response.json()).url, size: f.data.length });
            up.bytes += f.data.length;
          }
          return mine;
        }),
      );
      addUsage(up, done());
      done = meter();
      await Promise.all(
        urls.map(async (mine) => {
          for (const { url, size } of mine) {
            const body = await (await fetch(url.startsWith("/") ? `${URLS[0]}${url}` : url)).arrayBuffer();
            if (body.byteLength !== size) failed++;
            else down.bytes += size;
          }
        }),
      );
      addUsage(down, done());
    }
    clearInterval(sampler);
    const mbps = (acc) => +(acc.bytes / 1024 / 1024 / acc.seconds).toFixed(1);
    const cores = (acc) => acc.cpu.map((c) => +(c / acc.seconds).toFixed(3));
    const perMb = (acc) => acc.cpu.map((c) => +((1000 * c) / Math.max(1, acc.bytes / 1024 / 1024)).toFixed(2));
    return {
      clients: MEDIA_CLIENTS, sizes_mb: MEDIA_SIZES_MB, rounds: MEDIA_ROUNDS, failed,
      upload_MBps: mbps(up), download_MBps: mbps(down), upload_cpu: cores(up), download_cpu: cores(down),
      upload_cpu_ms_per_MB: perMb(up), download_cpu_ms_per_MB: perMb(down),
      rss_mb_peak: rssPeak.map((v) => +v.toFixed(1)), rss_mb: PIDS.map((pid) => +procRss(pid).toFixed(1)),
    };
  },

  async "chat-closed"() {
    const { sockets, clients, stats } = await chatRooms();
    const done = meter();
    const stop = Date.now() + DURATION;
    await Promise.all(clients.map(async (c) => { while (Date.now() < stop) await c.waitEcho(c.send()); }));
    const usage = done();
    closeAll(sockets);
    return { clients: clients.length, persisted_per_s: +(stats.echoes / usage.seconds).toFixed(1), p50_ms: pct(stats.latencies, 0.5), p99_ms: pct(stats.latencies, 0.99), failed: stats.failed, ...usage };
  },

  async "chat-open"() {
    const { sockets, clients, stats } = await chatRooms();
    const interval = (1000 * clients.length) / RATE;
    const done = meter();
    const stop = Date.now() + DURATION;
    await Promise.all(
      clients.map(async (c, i) => {
        await sleep((interval * i) / clients.length);
        let next = performance.now();
        while (Date.now() < stop) {
          c.send();
          next += interval;
          await sleep(Math.max(0, next - performance.now()));
        }
      }),
    );
    const usage = done();
    const settleStop = Date.now() + SETTLE;
    while (Date.now() < settleStop && stats.echoes < stats.sent) await sleep(50);
    const lost = stats.sent - stats.echoes;
    closeAll(sockets);
    return {
      offered_per_s: RATE, clients: clients.length, sent: stats.sent, persisted_per_s: +(stats.echoes / usage.seconds).toFixed(1),
      lost, lost_pct: +((100 * lost) / Math.max(1, stats.sent)).toFixed(2), deliveries: stats.deliveries,
      expected_deliveries: stats.sent * PER_ROOM, p50_ms: pct(stats.latencies, 0.5), p99_ms: pct(stats.latencies, 0.99), failed: stats.failed, ...usage,
    };
  },

  async fanout() {
    const sockets = await connectMany(MEMBERS + 1);
    const roomId = `${ROOM_PREFIX}-fanout`;
    const t0 = Date.now();
    for (let i = 0; i < sockets.length; i += 50) await Promise.all(sockets.slice(i, i + 50).map((s, j) => join(s, roomId, `m${i + j}`)));
    const joinSeconds = (Date.now() - t0) / 1000;
    await sleep(1000);
    const [sender, ...receivers] = sockets;
    let deliveries = 0;
    const latencies = [];
    receivers.forEach((s) =>
      s.on("receive_message", (m) => {
        deliveries++;
        if ((deliveries & 63) === 0) latencies.push(Date.now() - +m.message.split(":")[1]);
      }),
    );
    const done = meter();
    const stop = Date.now() + DURATION;
    let sent = 0;
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (Date.now() < stop) {
          await sendConfirmed(sender, { roomId, username: "m0", message: `fan:${Date.now()}:${sent++}` });
        }
      }),
    );
    const usage = done();
    await sleep(SETTLE);
    closeAll(sockets);
    return { members: MEMBERS, join_phase_s: +joinSeconds.toFixed(2), sent, deliveries_per_s: Math.round(deliveries / usage.seconds), lost_deliveries: sent * receivers.length - deliveries, p50_ms: pct(latencies, 0.5), p99_ms: pct(latencies, 0.99), ...usage };
  },

  // Filling one room: MEMBERS + 1 sockets (connected first) join it, 50 at a time as in
  // fanout's join phase; time until every member has received an online_users naming all of
  // them, and how many online_users copies that took (presence is O(N²) without coalescing).
  async fill() {
    const sockets = await connectMany(MEMBERS + 1);
    const roomId = `${ROOM_PREFIX}-fill`;
    const total = sockets.length;
    let deliveries = 0;
    let complete = 0;
    let allComplete;
    const everyoneComplete = new Promise((resolve) => (allComplete = resolve));
    const last = new Array(total).fill(0);
    sockets.forEach((s, i) =>
      s.on("online_users", (names) => {
        deliveries++;
        if (last[i] < total && names.length === total) {
          if (++complete === total) allComplete();
        }
        last[i] = names.length;
      }),
    );
    const done = meter();
    const t0 = performance.now();
    for (let i = 0; i < total; i += 50) await Promise.all(sockets.slice(i, i + 50).map((s, j) => join(s, roomId, `f${i + j}`)));
    const acksSeconds = (performance.now() - t0) / 1000;
    await Promise.race([everyoneComplete, sleep(ACK_TIMEOUT_MS)]);
    const fillSeconds = (performance.now() - t0) / 1000;
    const usage = done();
    await sleep(1000);
    closeAll(sockets);
    return { members: total, fill_s: +fillSeconds.toFixed(2), join_acks_s: +acksSeconds.toFixed(2), complete_members: complete, online_users_deliveries: deliveries, final_list_lengths_ok: last.every((n) => n === total), ...usage };
  },

  async connections() {
    const done = meter();
    const latencies = [];
    const sockets = [];
    for (let i = 0; i < SOCKETS; i += 50) {
      const group = [];
      for (let j = i; j < Math.min(SOCKETS, i + 50); j++) {
        group.push((async () => {
          const t = performance.now();
          const socket = await connect();
          await join(socket, `${ROOM_PREFIX}-c${Math.floor(j / CONNECTIONS_PER_ROOM)}`, `c${j}`);
          latencies.push(performance.now() - t);
          return socket;
        })());
      }
      sockets.push(...(await Promise.all(group)));
    }
    const usage = done();
    await sleep(2000);
    const idle = PIDS.map(procRss);
    let idleCpu = {};
    if (IDLE_SECONDS > 0) {
      const quiet = meter();
      await sleep(IDLE_SECONDS * 1000);
      const cores = quiet().cpu;
      idleCpu = { idle_seconds: IDLE_SECONDS, idle_cpu: cores, idle_cpu_us_per_socket_per_s: PIDS.length ? +((cores[0] * 1e6) / SOCKETS).toFixed(3) : null };
    }
    closeAll(sockets);
    const perConnKb = PIDS.length ? +(((idle[0] - usage.rss_mb_before[0]) * 1024) / SOCKETS).toFixed(1) : null;
    return { sockets: SOCKETS, rooms: Math.ceil(SOCKETS / CONNECTIONS_PER_ROOM), connects_per_s: +(SOCKETS / usage.seconds).toFixed(1), p50_ms: pct(latencies, 0.5), p99_ms: pct(latencies, 0.99), rss_kb_per_connection: perConnKb, ...idleCpu, ...usage };
  },

  async churn() {
    const done = meter();
    const stop = Date.now() + DURATION;
    let cycles = 0;
    let failed = 0;
    const latencies = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        let n = 0;
        while (Date.now() < stop) {
          const t = performance.now();
          try {
            const socket = await connect();
            const username = `ch${worker}-${n++}`;
            const roomId = `${ROOM_PREFIX}-churn${worker % 10}`;
            await join(socket, roomId, username);
            const ack = await sendConfirmed(socket, { roomId, username, message: "hi" });
            if (!ack.ok) failed++;
            socket.disconnect();
            cycles++;
            latencies.push(performance.now() - t);
          } catch {
            failed++;
          }
        }
      }),
    );
    const usage = done();
    return { concurrency: CONCURRENCY, cycles_per_s: +(cycles / usage.seconds).toFixed(1), failed, cycle_p50_ms: pct(latencies, 0.5), cycle_p99_ms: pct(latencies, 0.99), ...usage };
  },
};

const run = scenarios[SCENARIO];
if (!run) {
  console.error(`unknown SCENARIO ${SCENARIO}; one of ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
const result = await run();
console.log(JSON.stringify({ scenario: SCENARIO, protocol: ORIGINAL ? "original" : "chillout", transport: TRANSPORT, processes: URLS.length, ...result }));
process.exit(0);
