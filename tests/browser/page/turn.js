// One WebRTC peer that may only use a TURN relay (iceTransportPolicy "relay"), with the ICE
// servers of the Chillout server's GET /api/turn. The test drives two pages and carries
// their offer and answer (non-trickle: each description holds every gathered candidate).
// A data channel is enough to bring the connection up.
"use strict";

let pc = null;
let channel = null;
const received = [];

async function iceServers(server) {
  const response = await fetch(`${server}/api/turn`);
  if (response.status !== 200) throw new Error(`GET /api/turn: ${response.status}`);
  return (await response.json()).iceServers;
}

function gathered() {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

function listen(dataChannel) {
  channel = dataChannel;
  channel.addEventListener("message", (event) => received.push(event.data));
}

async function peer(server) {
  pc = new RTCPeerConnection({ iceServers: await iceServers(server), iceTransportPolicy: "relay" });
  pc.addEventListener("datachannel", (event) => listen(event.channel));
}

window.relayPeer = {
  async offer(server) {
    await peer(server);
    listen(pc.createDataChannel("probe"));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered();
    return pc.localDescription.toJSON();
  },
  async answer(server, offer) {
    await peer(server);
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered();
    return pc.localDescription.toJSON();
  },
  async accept(answer) {
    await pc.setRemoteDescription(answer);
  },
  // Resolves with the connection state once it is "connected", "failed" or "closed".
  settled() {
    return new Promise((resolve) => {
      const check = () => {
        if (["connected", "failed", "closed"].includes(pc.connectionState)) resolve(pc.connectionState);
      };
      pc.addEventListener("connectionstatechange", check);
      check();
    });
  },
  // The candidate types of the selected pair (RTCTransportStats.selectedCandidatePairId).
  async selectedPair() {
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((report) => { if (report.type === "transport") pairId = report.selectedCandidatePairId; });
    const pair = stats.get(pairId);
    return {
      state: pair.state,
      local: stats.get(pair.localCandidateId).candidateType,
      remote: stats.get(pair.remoteCandidateId).candidateType,
    };
  },
  async send(text) {
    if (channel.readyState !== "open") {
      await new Promise((resolve) => channel.addEventListener("open", resolve, { once: true }));
    }
    channel.send(text);
  },
  async next() {
    while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    return received.shift();
  },
};
