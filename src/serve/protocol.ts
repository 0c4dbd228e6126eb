// HTTP-level guards: connection timeouts, and a JSON error for every malformed request, including
// those Node answers itself (parse errors, timeouts, CONNECT, unknown Expect, no Host) unless
// told otherwise.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyHttpOptions, FastifyInstance, FastifyReply } from 'fastify';

export interface ConnectionTimeouts {
  /** A client must send its complete request headers within this time of connecting (or of its previous response). */
  headersTimeoutMs: number;
  /** A client must send its complete request, body included, within this time of its start. */
  bodyTimeoutMs: number;
  /** A keep-alive connection with no request in progress is closed after this time. */
  idleTimeoutMs: number;
}

/** Node checks the header and body deadlines on a timer; this interval (≤ 1/20 of the shorter deadline, ≤ 250 ms) bounds how late a 408 comes. */
export function timeoutCheckIntervalMs(timeouts: ConnectionTimeouts): number {
  return Math.min(250, Math.max(5, Math.floor(Math.min(timeouts.headersTimeoutMs, timeouts.bodyTimeoutMs) / 20)));
}

/** A complete HTTP/1.1 response with a JSON {error} body, for the paths where Node hands us a bare socket. */
function rawJsonResponse(status: number, reason: string, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify({ error: message });
  const lines = [`HTTP/1.1 ${status} ${reason}`, 'content-type: application/json; charset=utf-8', `content-length: ${Buffer.byteLength(body)}`, 'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** Writes the answer, then closes the socket once it is flushed (or after a second, if the client does not read). */
function answerAndClose(socket: Duplex, response: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), 1000);
  timer.unref();
  socket.end(response, () => {
    clearTimeout(timer);
    socket.destroy();
  });
}

/** Fastify options: timeouts, Host checked by us (for a JSON answer), and JSON answers to parse errors and timeouts. */
export function protocolOptions(timeouts: ConnectionTimeouts): FastifyHttpOptions<Server> {
  const { headersTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = timeouts;
  if (headersTimeoutMs > bodyTimeoutMs) throw new Error(`the headers timeout (${headersTimeoutMs} ms) must not exceed the body timeout (${bodyTimeoutMs} ms)`);
  return {
    // Node applies requestTimeout to the whole request (headers and body) and headersTimeout to the headers; both answer 408.
    requestTimeout: bodyTimeoutMs,
    // While closing, requests go through the app's own 503 (with Retry-After and a JSON body), not Fastify's.
    return503OnClosing: false,
    keepAliveTimeout: idleTimeoutMs,
    http: { headersTimeout: headersTimeoutMs, connectionsCheckingInterval: timeoutCheckIntervalMs(timeouts), requireHostHeader: false },
    clientErrorHandler: (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const response = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? rawJsonResponse(408, 'Request Timeout', `request not received in time (headers within ${headersTimeoutMs} ms, the whole request within ${bodyTimeoutMs} ms)`)
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? rawJsonResponse(431, 'Request Header Fields Too Large', 'the request headers are too large')
          : rawJsonResponse(400, 'Bad Request', `malformed HTTP request (${error.code ?? error.message})`);
      answerAndClose(socket, response);
    },
    frameworkErrors: (error: Error, _request: unknown, reply: FastifyReply) => {
      void reply.code(400).send({ error: error.message });
    },
  };
}

/** Listeners and a hook for requests Node would answer with an empty body, or Fastify would route anyway. */
export function guardProtocol(app: FastifyInstance): void {
  // Without a listener Node drops a CONNECT socket silently.
  app.server.on('connect', (request: IncomingMessage, socket: Duplex) => {
    answerAndClose(socket, rawJsonResponse(405, 'Method Not Allowed', `${request.method} is not supported`, { allow: 'GET, POST' }));
  });
  // Without a listener Node answers an Expect other than 100-continue with a bare 417.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    response.end(JSON.stringify({ error: `unsupported Expect: ${JSON.stringify(request.headers.expect)} (only 100-continue)` }));
  });
  app.addHook('onRequest', async (request, reply) => {
    const raw = request.raw;
    if (raw.httpVersion === '1.1' && raw.headers.host === undefined) {
      return reply.code(400).send({ error: 'the Host header is missing (required by HTTP/1.1)' });
    }
    // The asterisk form (`OPTIONS *`) and absolute URLs are not resources of this server (Fastify would route `GET *` to the page).
    if (!raw.url?.startsWith('/')) return reply.code(400).send({ error: `the request target must be a path starting with "/" (got ${JSON.stringify(raw.url?.slice(0, 100))})` });
    const encoding = raw.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      return reply.code(415).send({ error: `content-encoding ${JSON.stringify(encoding.slice(0, 100))} is not supported (send the body uncompressed)` });
    }
    return undefined;
  });
}
