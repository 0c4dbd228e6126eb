import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Command } from 'commander';

import { registerScoreCommand } from '../src/cli/commands/score.js';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
// Reference values: test/fixtures/caption-metrics/ (see its README).
const fixtureUrl = new URL('./fixtures/caption-metrics/set-b.json', import.meta.url);

interface CaptionFixture {
  references: Record<string, string[]>;
  candidates: Record<string, string>;
  scores: Record<string, number>;
}

let workDirectory: string;
let fixture: CaptionFixture;
let referencesPath: string;
let candidatesPath: string;

before(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), 'mue-score-'));
  fixture = JSON.parse(await readFile(fixtureUrl, 'utf8')) as CaptionFixture;
  referencesPath = join(workDirectory, 'references.json');
  candidatesPath = join(workDirectory, 'candidates.json');
  await writeFile(referencesPath, JSON.stringify(fixture.references));
  await writeFile(candidatesPath, JSON.stringify(fixture.candidates));
});

after(async () => {
  await rm(workDirectory, { recursive: true, force: true });
});

/** Runs `mue score <args>` on an in-process commander program; resolves to what it printed. */
async function runScore(args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  registerScoreCommand(program);
  const log = mock.method(console, 'log', () => {});
  try {
    await program.parseAsync(['score', ...args], { from: 'user' });
    return log.mock.calls.map((call) => String(call.arguments[0])).join('\n');
  } finally {
    log.mock.restore();
  }
}

describe('mue score (in-process commander program)', () => {
  it('prints an aligned table of corpus scores', async () => {
    const output = await runScore(['--references', referencesPath, '--candidates', candidatesPath]);
    const lines = output.split('\n');
    assert.deepEqual(lines.map((line) => line.split(/\s+/)[0]), ['images', 'BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'ROUGE-L', 'CIDEr-D']);
    assert.equal(new Set(lines.map((line) => line.length)).size, 1, 'rows are aligned to one width');
    assert.match(output, new RegExp(`CIDEr-D\\s+${fixture.scores['CIDEr-D']!.toFixed(4)}`));
  });

  it('prints all scores as JSON with --json', async () => {
    const output = await runScore(['--references', referencesPath, '--candidates', candidatesPath, '--json']);
    const scores = JSON.parse(output) as { bleu4: number; ciderD: number; perImage: Record<string, unknown> };
    assert.ok(Math.abs(scores.bleu4 - fixture.scores['BLEU-4']!) <= 1e-6);
    assert.ok(Math.abs(scores.ciderD - fixture.scores['CIDEr-D']!) <= 1e-6);
    assert.deepEqual(Object.keys(scores.perImage).sort(), Object.keys(fixture.candidates).sort());
  });

  it('reports a missing file', async () => {
    const missingPath = join(workDirectory, 'missing.json');
    await assert.rejects(runScore(['--references', missingPath, '--candidates', candidatesPath]), {
      message: `cannot read ${missingPath}: file not found`,
    });
  });

  it('reports invalid JSON', async () => {
    const brokenPath = join(workDirectory, 'broken.json');
    await writeFile(brokenPath, '{"0": ["a caption"');
    await assert.rejects(runScore(['--references', brokenPath, '--candidates', candidatesPath]), /broken\.json is not valid JSON/);
  });

  it('reports wrongly shaped references and candidates', async () => {
    const swappedShapesPath = join(workDirectory, 'swapped.json');
    await writeFile(swappedShapesPath, JSON.stringify({ '0': 'a caption' }));
    await assert.rejects(
      runScore(['--references', swappedShapesPath, '--candidates', candidatesPath]),
      /references must be a JSON object mapping image id to an array of caption strings \(image "0" is not\)/,
    );
    await assert.rejects(
      runScore(['--references', referencesPath, '--candidates', referencesPath]),
      /candidates must be a JSON object mapping image id to a caption string/,
    );
  });

  it('reports ids present on one side only', async () => {
    const extraCandidatePath = join(workDirectory, 'extra-candidate.json');
    await writeFile(extraCandidatePath, JSON.stringify({ ...fixture.candidates, unknown: 'a caption' }));
    await assert.rejects(runScore(['--references', referencesPath, '--candidates', extraCandidatePath]), /candidate image "unknown" has no references/);
  });
});

// Real-CLI test: runs src/cli/main.ts end to end, so it needs every command module main.ts
// imports (including ./commands/data.js, written separately) to be present.
describe('mue score (real CLI process)', () => {
  const execFileAsync = promisify(execFile);
  const runCli = (args: string[]) => execFileAsync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'score', ...args], { cwd: repoRoot });

  it('scores a fixture and fails with "mue: <message>" and exit code 1 on a bad file', async () => {
    const { stdout } = await runCli(['--references', referencesPath, '--candidates', candidatesPath, '--json']);
    assert.ok(Math.abs((JSON.parse(stdout) as { ciderD: number }).ciderD - fixture.scores['CIDEr-D']!) <= 1e-6);

    const brokenPath = join(workDirectory, 'broken-cli.json');
    await writeFile(brokenPath, 'not json');
    await assert.rejects(runCli(['--references', brokenPath, '--candidates', candidatesPath]), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr, /^mue: .*broken-cli\.json is not valid JSON/);
      return true;
    });
  });
});
