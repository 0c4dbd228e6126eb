// Crash-safe file writes: nothing already saved is lost if the process dies mid-write.
// Directory swaps go through FileOps, so a test can make any single operation fail and check
// that what is left behind is recoverable (see recoverCheckpoint in checkpoint.ts).
import { closeSync, copyFileSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** The file-system operations a checkpoint save or recovery performs, one call each. */
export interface FileOps {
  makeDirectory(path: string): void;
  /** Atomic: the file holds the old or the new bytes, never a mix (see writeFileAtomic). */
  writeFile(path: string, data: string | Uint8Array): void;
  copyFile(from: string, to: string): void;
  rename(from: string, to: string): void;
  /** Recursive, no error if absent. */
  remove(path: string): void;
  syncDirectory(path: string): void;
}

export const NODE_FILE_OPS: FileOps = {
  makeDirectory: (path) => mkdirSync(path, { recursive: true }),
  writeFile: (path, data) => writeFileAtomic(path, data),
  copyFile: (from, to) => copyFileSync(from, to),
  rename: (from, to) => renameSync(from, to),
  remove: (path) => rmSync(path, { recursive: true, force: true }),
  syncDirectory: (path) => syncDirectory(path),
};

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
 * (old -> `.TARGET.old-PID`, new -> target, remove the old) so a reader sees the old or the new
 * set, never a mix. A crash between the renames leaves no target; recoverCheckpoint finds the
 * newest complete one among the leftovers.
 */
export function replaceDirectory(freshDirectory: string, target: string, ops: FileOps = NODE_FILE_OPS, targetExists = true): void {
  const previous = join(dirname(target), `.${basename(target)}.old-${process.pid}`);
  if (targetExists) {
    ops.remove(previous); // a leftover of this process's own earlier failed swap
    ops.rename(target, previous);
  }
  ops.rename(freshDirectory, target);
  ops.syncDirectory(dirname(target));
  if (targetExists) ops.remove(previous);
}

function syncDirectory(directory: string): void {
  const fd = openSync(directory, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
