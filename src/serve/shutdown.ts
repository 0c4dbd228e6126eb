// Graceful shutdown with a bounded drain. Node's own server.close() stops the header/body
// timeout checks and destroys keep-alive connections that look idle, even when a request sits
// unread in their socket buffer (those clients saw ECONNRESET). So: keep listening for a short
// grace period, answering every new request 503 + Retry-After with `Connection: close`, let the
// requests already received finish, and only then close, forcing what is left at the deadline.
import type { Server } from 'node:http';

export interface DrainTarget {
  server: Server;
  /** From now on: new requests get 503 + Retry-After, every response closes its connection. */
  refuseNewRequests(): void;
  /** Requests the app has started and not yet answered (including those still receiving their body). */
  inFlight(): number;
  /** Answers the inference requests still queued with 503 + Retry-After; returns how many. */
  abandonQueued(): number;
  /** Resolves when no batch is running. */
  batchesDone(): Promise<void>;
  /** Closes the application (Fastify close: stop listening, end idle connections, onClose hooks). */
  close(): Promise<void>;
}

export interface DrainOptions {
  /** Keep accepting (and refusing with 503) this long, so connections and bytes that arrived before the signal are read, not reset. */
  graceMs: number;
  /** Past this, queued requests get 503 and connections whose request never fully arrived are closed. */
  drainTimeoutMs: number;
}

export interface DrainReport {
  timeMs: number;
  /** The in-flight requests did not all finish within drainTimeoutMs. */
  timedOut: boolean;
  /** Queued inference requests answered 503 at the deadline. */
  abandonedQueued: number;
  /** Connections still open after close (stalled senders or readers), destroyed. */
  forcedConnections: number;
}

/** How long responses that are already being written (e.g. the 503s of abandoned requests) get before connections are forced closed. */
const SETTLE_MS = 200;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(done: () => boolean, untilMs: number): Promise<void> {
  while (!done() && performance.now() < untilMs) await delay(Math.min(10, Math.max(1, untilMs - performance.now())));
}

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
}

export async function drainAndClose(target: DrainTarget, options: DrainOptions): Promise<DrainReport> {
  const started = performance.now();
  const deadline = started + options.drainTimeoutMs;
  target.refuseNewRequests();
  await delay(Math.min(options.graceMs, options.drainTimeoutMs));
  await waitUntil(() => target.inFlight() === 0, deadline);
  const timedOut = target.inFlight() > 0;
  const abandonedQueued = timedOut ? target.abandonQueued() : 0;
  // At most one batch is running; its requests were received in full and get their answers.
  await target.batchesDone();
  await waitUntil(() => target.inFlight() === 0, performance.now() + SETTLE_MS);
  const closed = target.close();
  await Promise.race([closed, delay(SETTLE_MS)]);
  // Whatever is still connected never finished sending its request (or never reads its answer).
  const forcedConnections = await openConnections(target.server);
  target.server.closeAllConnections();
  await closed;
  return { timeMs: performance.now() - started, timedOut, abandonedQueued, forcedConnections };
}
