// The bare relay on the reference Socket.IO server (Node.js socket.io 4.x): the floor of the
// server-CPU tables. It does what bench/relay_server.py does and nothing more:
//   - connect on /smcp only with auth.token equal to --token;
//   - server:join_office enters the room, remembers name -> socket, announces
//     notify:enter_office to the rest of the room and acks (true, null);
//   - notify:leave_office to the room on disconnect;
//   - client:* is forwarded to the Computer named in data.computer and its ack returned as is;
//   - server:update_* is re-broadcast to the room as notify:update_*.
//
//   node bench/node_relay/server.js --port 0 --token T     (prints "LISTENING <port>")
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = option("--host", "127.0.0.1");
const port = Number(option("--port", "0"));
const token = option("--token", "bench-secret");
if (!["127.0.0.1", "::1", "localhost"].includes(host)) {
  console.error("node-relay: loopback only");
  process.exit(2);
}

// noDelay (TCP_NODELAY) is the default of node:http since Node 18; said here so it is not lost.
const httpServer = http.createServer({ noDelay: true });
const io = new Server(httpServer, { path: "/socket.io", serveClient: false });
const nsp = io.of("/smcp");
const nameToSocket = new Map();

nsp.use((socket, next) => {
  const auth = socket.handshake.auth;
  if (auth && auth.token === token) next();
  else next(new Error("unauthorized"));
});

nsp.on("connection", (socket) => {
  let session = null; // { role, name, office }

  function forward(event, data, ack) {
    const target = nameToSocket.get((data && data.computer) || "");
    if (target === undefined) {
      if (ack) ack({ code: 404, message: "computer not found" });
      return;
    }
    const ms = ((data && data.timeout) || 60) * 1000;
    target.timeout(ms).emit(event, data, (err, ...reply) => {
      if (!ack) return;
      if (err) ack({ code: 408, message: "timeout" });
      else ack(...reply);
    });
  }

  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    const data = args[0];
    if (event === "server:join_office") {
      session = { role: data.role, name: data.name, office: data.office_id };
      nameToSocket.set(session.name, socket);
      socket.join(session.office);
      socket.to(session.office).emit("notify:enter_office", { office_id: session.office, [session.role]: session.name });
      if (ack) ack(true, null);
    } else if (event.startsWith("client:")) {
      forward(event, data, ack);
    } else {
      if (event.startsWith("server:update_") && session !== null) {
        socket.to(session.office).emit("notify:" + event.slice(7), data);
      }
      if (ack) ack();
    }
  });

  socket.on("disconnect", () => {
    if (session === null) return;
    if (nameToSocket.get(session.name) === socket) nameToSocket.delete(session.name);
    nsp.to(session.office).emit("notify:leave_office", { office_id: session.office, [session.role]: session.name });
  });
});

httpServer.listen(port, host, () => {
  console.log("LISTENING " + httpServer.address().port);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
