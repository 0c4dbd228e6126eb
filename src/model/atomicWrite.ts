// Crash-safe file writes: nothing already saved is lost if the process dies mid-write.
import { closeSync, fsyncSync, openSync, renameSync, writeSync, rmSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** Writes to a temporary file in the same folder, fsyncs it, renames it over the target, fsyncs the folder. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  syncDirectory(dirname(path));
}

/**
 * Replaces a whole directory: the caller fills a fresh sibling, then this swaps it in
 * (old -> .old, new -> target, remove .old) so a reader sees the old or the new set, never a mix.
 */
export function replaceDirectory(freshDirectory: string, target: string): void {
  const previous = `${target}.old-${process.pid}`;
  const hadPrevious = existsSync(target);
  if (hadPrevious) renameSync(target, previous);
  renameSync(freshDirectory, target);
  syncDirectory(dirname(target));
  if (hadPrevious) rmSync(previous, { recursive: true, force: true });
}

function syncDirectory(directory: string): void {
  const fd = openSync(directory, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
