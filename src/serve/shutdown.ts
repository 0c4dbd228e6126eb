// Graceful shutdown with a bounded drain. Node's own server.close() stops the header/body
// timeout checks, stops accepting at once (connections still in the kernel's accept queue are
// reset) and destroys keep-alive connections that look idle even when a request sits unread in
// their socket buffer: under load, clients saw ECONNRESET. So, by event-loop turns rather than
// wall time (a busy loop accepts and reads late; measured on Node 20: a queue of 172
// connections was accepted a few to a few dozen per turn, over more than ten turns):
// 1. answer every new request 503 + Retry-After with `Connection: close`;
// 2. keep accepting until QUIET_TURNS turns in a row bring no new connection (and at least the
//    grace period; a stream of reconnecting clients keeps it going until the deadline);
// 3. wait until every request received in full is answered and every connection waiting for a
//    request has had a few turns to deliver one (or the deadline: queued requests then get 503);
// 4. close: what is still connected never finished sending a request, and is destroyed.
import type { Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';

export interface DrainOptions {
  /** Keep accepting (and refusing with 503) at least this long. */
  graceMs: number;
  /** Past this, queued requests get 503 and the server closes whatever is left. */
  drainTimeoutMs: number;
}

export interface DrainReport {
  timeMs: number;
  /** The requests received did not all finish within drainTimeoutMs. */
  timedOut: boolean;
  /** Queued inference requests answered 503 at the deadline (requests still being decoded then also get 503). */
  abandonedQueued: number;
  /** Connections still open at the end (stalled senders or readers, whose requests never fully arrived), destroyed. */
  forcedConnections: number;
}

export interface DrainTarget {
  server: Server;
  /** From now on: new requests get 503 + Retry-After, every response closes its connection. */
  refuseNewRequests(): void;
  /** Requests received in full (body included) and not yet answered. */
  receivedUnanswered(): number;
  /** Answers the inference requests still queued, and any submitted later, with 503 + Retry-After; returns how many were queued. */
  stopQueue(): number;
  /** Resolves when no batch is running. */
  batchesDone(): Promise<void>;
  /** Closes the application (Fastify close: end idle connections, onClose hooks). */
  close(): Promise<void>;
}

/** Event-loop turns a connection waiting for a request gets to deliver bytes already sent: one to be accepted or polled, one to be read and parsed, one spare. */
const SETTLE_TURNS = 3;
/** Turns in a row without a new connection after which the accept queue is taken to be empty. */
const QUIET_TURNS = 3;
/** After the deadline, how long requests already received get to reach their 503 (e.g. those still decoding their image) before connections are forced closed. */
const SETTLE_MS = 1000;

/**
 * Counts event-loop turns and, per connection, since which turn it has been waiting for a request
 * (from its accept, or from the end of its last response); installed when the server is built.
 */
export class ConnectionTracker {
  turn = 0;
  lastAcceptTurn = -1;
  private readonly waitingSince = new Map<Socket, number>();

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.lastAcceptTurn = this.turn;
      this.waitingSince.set(socket, this.turn);
      socket.once('close', () => this.waitingSince.delete(socket));
    });
    server.on('request', (request: { socket: Socket }, response: ServerResponse) => {
      this.waitingSince.delete(request.socket);
      response.once('finish', () => {
        if (!request.socket.destroyed) this.waitingSince.set(request.socket, this.turn);
      });
    });
  }

  /** One turn: a timer, then the I/O poll (accepts, reads), then the check phase where this resolves. */
  async nextTurn(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setImmediate(resolve));
    this.turn++;
  }

  /** Every connection waiting for a request has had SETTLE_TURNS turns to deliver one. */
  settled(): boolean {
    for (const since of this.waitingSince.values()) if (this.turn - since < SETTLE_TURNS) return false;
    return true;
  }
}

export async function drainAndClose(target: DrainTarget, tracker: ConnectionTracker, options: DrainOptions): Promise<DrainReport> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  target.refuseNewRequests();
  // 2. Accept until the queue stays empty.
  do {
    await tracker.nextTurn();
  } while ((elapsed() < options.graceMs || tracker.turn - tracker.lastAcceptTurn <= QUIET_TURNS) && elapsed() < options.drainTimeoutMs);
  // Stop accepting without touching open connections (http.Server.close would also drop the idle-looking ones).
  NetServer.prototype.close.call(target.server);
  // 3. Let what was received finish.
  while ((target.receivedUnanswered() > 0 || !tracker.settled()) && elapsed() < options.drainTimeoutMs) await tracker.nextTurn();
  const timedOut = target.receivedUnanswered() > 0;
  const abandonedQueued = timedOut ? target.stopQueue() : 0;
  // At most one batch is running; its requests were received in full and get their answers.
  await target.batchesDone();
  const settleUntil = performance.now() + SETTLE_MS;
  while (target.receivedUnanswered() > 0 && performance.now() < settleUntil) await tracker.nextTurn();
  // 4. Close.
  const closed = target.close();
  // Fastify's close ends idle connections; give it a moment before forcing the rest.
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 200))]);
  const forcedConnections = await new Promise<number>((resolve) => target.server.getConnections((error, count) => resolve(error ? 0 : count)));
  target.server.closeAllConnections();
  await closed;
  return { timeMs: elapsed(), timedOut, abandonedQueued, forcedConnections };
}
