// CLI resource bounds: every numeric option of every command (but `serve`, tested with the
// server) has an upper bound shown in --help, and bad inputs through the real CLI (devices, a
// FIFO without a writer, an endless pipe, NaN weights, huge numbers) end in one `mue: …` line
// with exit code 1. The full list runs in scripts/reliability/cli.ts.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { Command } from 'commander';
import { registerCalibrateCommand } from '../src/cli/commands/calibrate.js';
import { registerConvertOfaCommand } from '../src/cli/commands/convert-ofa.js';
import { registerDataCommand } from '../src/cli/commands/data.js';
import { registerDemoCommand } from '../src/cli/commands/demo.js';
import { registerEvalCommand } from '../src/cli/commands/eval.js';
import { registerExportCommand } from '../src/cli/commands/export.js';
import { registerPredictCommand } from '../src/cli/commands/predict.js';
import { registerReportCommand } from '../src/cli/commands/report.js';
import { registerScoreCommand } from '../src/cli/commands/score.js';
import { registerTrainCommand } from '../src/cli/commands/train.js';
import { registerVerifyOfaCommand } from '../src/cli/commands/verify-ofa.js';
import { readFileBounded } from '../src/data/boundedRead.js';
import { cliCases, prepareScratch, runCase } from '../scripts/reliability/cli.js';

const scratch = prepareScratch();
after(() => rmSync(scratch, { recursive: true, force: true }));

test('every numeric option refuses 1e20 and shows its bounds in --help', () => {
  const program = new Command();
  for (const register of [registerDataCommand, registerTrainCommand, registerPredictCommand, registerExportCommand, registerEvalCommand,
    registerCalibrateCommand, registerReportCommand, registerDemoCommand, registerScoreCommand, registerVerifyOfaCommand, registerConvertOfaCommand]) register(program);
  const commands = program.commands.flatMap((command) => [command, ...command.commands]);
  let numeric = 0;
  for (const command of commands) {
    for (const option of command.options) {
      const parse = (option as unknown as { parseArg?: (value: string, previous: unknown) => unknown }).parseArg;
      if (!parse) continue;
      assert.throws(() => parse('1e20', undefined), /./, `${command.name()} ${option.flags} accepts 1e20`);
      let acceptsNumbers = false;
      try {
        parse('1', undefined);
        acceptsNumbers = true;
      } catch {
        // a choice or a list
      }
      if (!acceptsNumbers) continue;
      numeric++;
      assert.match(option.description, /\((integer -?\d+–\d+|number in [[(]-?[\d.]+, [\d.]+[\])])\)/, `${command.name()} ${option.flags}: bounds not in --help`);
    }
  }
  assert.ok(numeric >= 20, `only ${numeric} numeric options found`);
  // data generate validates in its action; its help names the bounds too
  const generate = commands.find((command) => command.name() === 'generate')!;
  for (const flag of ['--count', '--seed', '--image-size']) assert.match(generate.options.find((o) => o.long === flag)!.description, /\(integer \d+–\d+\)/, flag);
});

test('bounded reads: regular files, the byte limit, a directory, a silent FIFO', () => {
  assert.equal(readFileBounded(new URL(import.meta.url).pathname, 1 << 20).toString('utf8').slice(0, 3), '// ');
  assert.throws(() => readFileBounded('/dev/zero', 1000), /larger than the limit of 1000 bytes/);
  assert.throws(() => readFileBounded(scratch, 1000), /it is a directory/);
  const started = Date.now();
  assert.throws(() => readFileBounded(`${scratch}/fifo`, 1000, 200), /no data arrived within 200 ms/);
  assert.ok(Date.now() - started < 2000);
});

const FAST_CASES = ['predict --image /dev/zero', 'predict --image FIFO without writer', 'predict --image endless pipe', 'predict NaN weights',
  'predict --beam-size 100000 (caption)'];

test('bad CLI invocations: one `mue: …` line, exit code 1, no hang', async () => {
  const cases = cliCases(scratch).filter((c) => FAST_CASES.includes(c.name));
  assert.equal(cases.length, FAST_CASES.length);
  for (const testCase of cases) {
    const outcome = await runCase(testCase);
    assert.equal(outcome.result, 'one-line-error', `${testCase.name}: exit ${outcome.exitCode}, stderr: ${outcome.stderr}`);
  }
});
