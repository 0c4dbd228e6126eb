// Crash safety and integrity of checkpoints: a save failing after any file operation is recovered
// to the newest complete checkpoint; every corruption case of the reliability suite is refused
// with a clear message. (scripts/reliability/checkpoints.ts runs all scenarios and counts them.)
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NODE_FILE_OPS } from '../src/model/atomicWrite.js';
import { loadCheckpoint, recoverCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, train } from '../src/train/trainer.js';
import { CORRUPTION_CASES, corruptionOutcomes, crashInjection, crashRecovered, syntheticCheckpoint } from '../scripts/reliability/checkpoints.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-recovery-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

test('a save over a checkpoint that fails after any of its file operations leaves the newest complete checkpoint and no leftovers', () => {
  const outcomes = crashInjection(join(workDir, 'crash'), ['over-checkpoint']);
  assert.ok(outcomes.length >= 10, `only ${outcomes.length} failure points`);
  assert.ok(outcomes.some((o) => o.expectedStep === 1) && outcomes.some((o) => o.expectedStep === 2), 'both the old and the new checkpoint are expected somewhere');
  for (const outcome of outcomes) assert.ok(crashRecovered(outcome), JSON.stringify(outcome));
});

test('every corruption case is refused with a one-line message naming the problem', () => {
  const outcomes = corruptionOutcomes(join(workDir, 'corrupt'));
  assert.equal(outcomes.length, CORRUPTION_CASES.length);
  for (const outcome of outcomes) assert.equal(outcome.result, 'refused-clear', `${outcome.name}: ${outcome.message ?? 'accepted'}`);
});

test('a checkpoint hidden in a leftover of a dead process is moved back; train --out refuses to start again at step 0', async () => {
  const run = join(workDir, 'hidden', 'run');
  saveCheckpoint(run, syntheticCheckpoint(4));
  renameSync(run, `${run}.old-999999999`); // as if killed between the two renames of the swap
  const options = { ...DEFAULT_TRAIN_OPTIONS, task: 've' as const, preset: 'tiny', outDir: run };
  await assert.rejects(train(options), /already holds a checkpoint: pass --resume/);
  assert.equal(loadCheckpoint(run).trainingState!.step, 4);
  assert.deepEqual(readdirSync(join(workDir, 'hidden')), ['run']);
});

test('leftovers of a live process and legacy-named folders beside a complete checkpoint are left alone; a leftover that cannot be moved is named in the error', () => {
  const run = join(workDir, 'live', 'run');
  saveCheckpoint(run, syntheticCheckpoint(1));
  const live = join(workDir, 'live', `.run.writing-${process.ppid}`);
  mkdirSync(live);
  const backup = `${run}.old-2024`; // NAME.old-PID as earlier versions named it, or a user's backup
  saveCheckpoint(backup, syntheticCheckpoint(9));
  const dead = join(workDir, 'live', '.run.old-999999999');
  mkdirSync(dead);
  assert.equal(loadCheckpoint(run).trainingState!.step, 1);
  assert.ok(existsSync(live), 'a save under way in another process is not touched');
  assert.ok(existsSync(backup), 'a NAME.old-PID folder beside a complete checkpoint is not taken or removed');
  assert.ok(!existsSync(dead), 'a leftover of a dead process is removed');
  rmSync(live, { recursive: true });

  const stuck = join(workDir, 'stuck', 'run');
  saveCheckpoint(stuck, syntheticCheckpoint(2));
  renameSync(stuck, `${stuck}.old-999999999`);
  const refusing = { ...NODE_FILE_OPS, rename: () => { throw new Error('EACCES: permission denied'); } };
  assert.throws(() => recoverCheckpoint(stuck, refusing), /run\.old-999999999 holds the newest complete checkpoint of .*run .*could not be moved into place: EACCES/);
});
