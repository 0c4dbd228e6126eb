// Reading a user-named file with a byte limit that holds whatever the path is: a regular file,
// a device (/dev/zero reports size 0 and never ends), a FIFO or a pipe. The reported size is
// never trusted; bytes are read incrementally and reading stops one byte past the limit.
// A FIFO is opened non-blocking, so opening one without a writer cannot hang: reading waits for
// its first byte at most `timeoutMs` (a writer may connect late), then fails. Hand-written:
// fs.readFile trusts fstat's size and blocks on a FIFO without a writer.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** How long a FIFO or pipe may stay silent before reading gives up. */
export const DEFAULT_READ_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 5;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Errors whose message says what went wrong without the path; callers name the file. */
export class BoundedReadError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** The whole file, or a BoundedReadError: too large, a directory, silent too long, or the system's reason (ENOENT, EACCES…). */
export function readFileBounded(path: string, maxBytes: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw systemError(error);
  }
  try {
    const stats = fstatSync(fd);
    if (stats.isDirectory()) throw new BoundedReadError('it is a directory, not a file', 'EISDIR');
    const isStream = stats.isFIFO() || stats.isSocket();
    // The reported size is only a first guess for the buffer (0 for devices and pipes).
    let buffer = Buffer.allocUnsafe(Math.min(Math.max(stats.size + 1, 64 * 1024), maxBytes + 1));
    let length = 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (length === buffer.length) {
        if (length > maxBytes) throw new BoundedReadError(`larger than the limit of ${maxBytes} bytes`, 'ETOOBIG');
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      let count: number;
      try {
        count = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw systemError(error);
        count = -1; // nothing available yet from a FIFO or pipe
      }
      // A FIFO read returns 0 both at its end and while no writer has connected yet.
      if (count === 0 && !(isStream && length === 0)) break;
      if (count > 0) {
        length += count;
        continue;
      }
      if (Date.now() > deadline) throw new BoundedReadError(`no data arrived within ${timeoutMs} ms (a FIFO or pipe without a writer?)`, 'ETIMEDOUT');
      Atomics.wait(sleeper, 0, 0, POLL_INTERVAL_MS);
    }
    if (length > maxBytes) throw new BoundedReadError(`larger than the limit of ${maxBytes} bytes`, 'ETOOBIG');
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

function systemError(error: unknown): BoundedReadError {
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  const reasons: Record<string, string> = { ENOENT: 'file not found', EACCES: 'permission denied (EACCES)', EISDIR: 'it is a directory, not a file' };
  return new BoundedReadError(reasons[code] ?? (error as Error).message, code);
}
