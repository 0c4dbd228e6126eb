// Resume after crashes: the training log holds every step exactly once, however often the run
// was interrupted between logging a step and checkpointing it.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tf } from '../src/model/backend.js';
import { DEFAULT_TRAIN_OPTIONS, keepLogUpTo, train, type TrainOptions } from '../src/train/trainer.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-resume-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

const options: TrainOptions = {
  ...DEFAULT_TRAIN_OPTIONS, task: 've', preset: 'tiny', imageSize: 32, steps: 9, batchSize: 4, warmupSteps: 1,
  validationEvery: 1000, validationSize: 4, checkpointEvery: 2, outDir: join(workDir, 'run'),
};
const logPath = join(options.outDir, 'train-log.jsonl');
const trainSteps = () => readFileSync(logPath, 'utf8').trim().split('\n').map((line) => JSON.parse(line)).filter((r) => r.type === 'train').map((r) => r.step);

/** Trains until `crashAt` is logged, then "crashes" (the step is logged but not checkpointed). */
async function runUntilCrash(crashAt: number | undefined, start: 'fresh' | 'resume'): Promise<void> {
  const crash = new Error('simulated crash');
  try {
    const result = await train(options, { onStep: (record) => { if (record.step === crashAt) throw crash; } }, start);
    result.model.dispose();
  } catch (error) {
    if (error !== crash) throw error;
    tf.disposeVariables(); // the crashed run's model, as a process exit would
  }
}

test('three crashes after logging but before checkpointing, three resumes: steps 1..N, each once', async () => {
  await runUntilCrash(3, 'fresh'); // checkpoint at 2, log up to 3
  assert.deepEqual(trainSteps(), [1, 2, 3]);
  await runUntilCrash(5, 'resume'); // log cut back to 2, then 3, 4 (checkpoint), 5
  await runUntilCrash(8, 'resume'); // cut to 4, then 5..8, checkpoint at 6 and 8 comes after the crash
  appendFileSync(logPath, '{"type":"train","st'); // killed in the middle of writing a record
  await runUntilCrash(undefined, 'resume');
  assert.deepEqual(trainSteps(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('keepLogUpTo keeps records up to the step, unreadable complete lines, and drops a torn last line', () => {
  const path = join(workDir, 'log.jsonl');
  const lines = ['{"type":"train","step":1}', 'not json', '{"type":"validation","step":2}', '{"type":"train","step":3}'];
  appendFileSync(path, `${lines.join('\n')}\n{"type":"tr`);
  keepLogUpTo(path, 2);
  assert.equal(readFileSync(path, 'utf8'), `${lines.slice(0, 3).join('\n')}\n`);
});
