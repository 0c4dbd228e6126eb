// Reliability sub-suite: bad CLI invocations. Each case runs the real CLI (except `serve`) with
// one bad input: numbers far beyond any bound, devices (/dev/zero), a FIFO without a writer,
// an endless pipe, a directory, NaN weights. Every case must end within its time limit with exit
// code 1 and exactly one stderr line `mue: …` that says what is wrong.
// Run alone: node --import tsx scripts/reliability/cli.ts   (prints JSON)
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { encodePng } from '../../src/data/png.js';
import { veExample } from '../../src/data/sceneworld.js';
import { nodeSha256 } from '../../src/model/sha256.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src', 'cli', 'main.ts');
const VE_MODEL = join(ROOT, 'models', 've-small');
const CAPTION_MODEL = join(ROOT, 'models', 'caption-small');
/** No case may take longer (the FIFO case waits for the 5 s read timeout). */
const CASE_TIMEOUT_MS = 60_000;

export interface CliCase {
  name: string;
  args: string[];
  expected: RegExp;
  /** The CLI's stdin is a shell pipe from /dev/zero (an endless pipe). */
  endlessStdin?: boolean;
}

export interface CliOutcome { name: string; exitCode: number | null; timedOut: boolean; elapsedMs: number; stderr: string; result: 'one-line-error' | 'unclear-error' | 'accepted' | 'hang' }

/** The cases; `dir` is a scratch folder holding scene.png, a FIFO, and a copy of ve-small with NaN weights. */
export function cliCases(dir: string): CliCase[] {
  const image = join(dir, 'scene.png');
  const predictVe = ['predict', '--model', VE_MODEL, '--image', image, '--text', 'there is a red circle'];
  const predictCaption = ['predict', '--model', CAPTION_MODEL, '--image', image];
  const train = ['train', '--task', 've', '--preset', 'tiny', '--out', join(dir, 'never-written')];
  return [
    { name: 'predict --image /dev/zero', args: ['predict', '--model', VE_MODEL, '--image', '/dev/zero', '--text', 'x'], expected: /cannot read image \/dev\/zero: larger than the limit of \d+ bytes/ },
    { name: 'predict --image FIFO without writer', args: ['predict', '--model', VE_MODEL, '--image', join(dir, 'fifo'), '--text', 'x'], expected: /cannot read image .*fifo: no data arrived within \d+ ms/ },
    { name: 'predict --image endless pipe', args: ['predict', '--model', VE_MODEL, '--image', '/dev/stdin', '--text', 'x'], expected: /cannot read image \/dev\/stdin: larger than the limit/, endlessStdin: true },
    { name: 'predict --image directory', args: ['predict', '--model', VE_MODEL, '--image', dir, '--text', 'x'], expected: /cannot read image .*: it is a directory/ },
    { name: 'predict NaN weights', args: ['predict', '--model', join(dir, 've-nan'), '--image', image, '--text', 'x'], expected: /tensor "decoder\.final_norm\.weight" holds NaN/ },
    { name: 'predict huge finite weights (VE)', args: ['predict', '--model', join(dir, 've-huge'), '--image', image, '--text', 'x'], expected: /scores are not numbers \(NaN\)/ },
    { name: 'predict huge finite weights (caption)', args: ['predict', '--model', join(dir, 'caption-huge'), '--image', image], expected: /scores are not numbers \(NaN\)/ },
    { name: 'predict huge finite weights (caption, beam 5)', args: ['predict', '--model', join(dir, 'caption-huge'), '--image', image, '--beam-size', '5'], expected: /scores are not numbers \(NaN\)/ },
    { name: 'predict --beam-size 100000 (caption)', args: [...predictCaption, '--beam-size', '100000'], expected: /--beam-size must be an integer from 1 to 64/ },
    { name: 'predict --beam-size 1e20', args: [...predictCaption, '--beam-size', '1e20'], expected: /--beam-size must be an integer from 1 to 64/ },
    { name: 'predict --beam-size 0', args: [...predictCaption, '--beam-size', '0'], expected: /--beam-size must be an integer/ },
    { name: 'predict --threads 1e9', args: [...predictVe, '--threads', '1e9'], expected: /--threads must be an integer from 1 to 256/ },
    { name: 'predict --no-repeat-ngram-size 1e9', args: [...predictCaption, '--no-repeat-ngram-size', '1e9'], expected: /--no-repeat-ngram-size must be an integer from 0 to 64/ },
    { name: 'predict --decoder-threshold 1e20', args: [...predictVe, '--decoder-threshold', '1e20'], expected: /--decoder-threshold must be a number in \[-1, 1\]/ },
    { name: 'predict --image-threshold 0x1', args: [...predictVe, '--image-threshold', '0x1'], expected: /--image-threshold must be a number \(got "0x1"\)/ },
    { name: 'predict --text-threshold Infinity', args: [...predictVe, '--text-threshold', 'Infinity'], expected: /--text-threshold must be a number/ },
    { name: 'train --steps 1e20', args: [...train, '--steps', '1e20'], expected: /--steps must be an integer from 1 to 10000000/ },
    { name: 'train --batch-size 1e9', args: [...train, '--batch-size', '1e9'], expected: /--batch-size must be an integer from 1 to 4096/ },
    { name: 'train --learning-rate 1e9', args: [...train, '--learning-rate', '1e9'], expected: /--learning-rate must be a number in \(0, 1\]/ },
    { name: 'train --validation-size 1e12', args: [...train, '--validation-size', '1e12'], expected: /--validation-size must be an integer from 1 to 1000000/ },
    { name: 'train --image-size 1e6', args: [...train, '--image-size', '1e6'], expected: /--image-size must be an integer from 1 to 1024/ },
    { name: 'train --seed -1', args: [...train, '--seed', '-1'], expected: /--seed must be an integer from 0 to 4294967295/ },
    { name: 'train --stop-at 1e20', args: [...train, '--stop-at', '1e20'], expected: /--stop-at must be an integer from 1 to 10000000/ },
    { name: 'train --tokenizer /dev/zero', args: [...train, '--tokenizer', '/dev/zero', '--steps', '1'], expected: /--tokenizer \/dev\/zero: cannot read it as JSON \(larger than the limit/ },
    { name: 'eval --count 1e20', args: ['eval', '--model', VE_MODEL, '--count', '1e20'], expected: /--count must be an integer from 1 to 1000000/ },
    { name: 'eval --threads 1e9', args: ['eval', '--model', VE_MODEL, '--threads', '1e9'], expected: /--threads must be an integer from 1 to 256/ },
    { name: 'calibrate --count 1e20', args: ['calibrate', '--model', VE_MODEL, '--count', '1e20'], expected: /--count must be an integer from 1 to 1000000/ },
    { name: 'calibrate --delta 2', args: ['calibrate', '--model', VE_MODEL, '--delta', '2'], expected: /--delta must be a number in \(0, 1\)/ },
    { name: 'calibrate --target-retention 1e20', args: ['calibrate', '--model', VE_MODEL, '--target-retention', '1e20'], expected: /--target-retention must be a number in \(0, 1\]/ },
    { name: 'demo --count 1e20', args: ['demo', '--count', '1e20'], expected: /--count must be an integer from 1 to 1000000/ },
    { name: 'demo --seed 1e20', args: ['demo', '--seed', '1e20'], expected: /--seed must be an integer from 0 to 4294967295/ },
    { name: 'data generate --count 1e20', args: ['data', 'generate', '--task', 've', '--count', '1e20', '--seed', '1', '--split', 'train', '--out', join(dir, 'data')], expected: /--count must be an integer from 1 to 10000000/ },
    { name: 'score --references /dev/zero', args: ['score', '--references', '/dev/zero', '--candidates', '/dev/zero'], expected: /cannot read \/dev\/zero: larger than the limit of \d+ bytes/ },
    { name: 'score --references FIFO without writer', args: ['score', '--references', join(dir, 'fifo'), '--candidates', join(dir, 'fifo')], expected: /cannot read .*fifo: no data arrived within \d+ ms/ },
    { name: 'report --input /dev/zero', args: ['report', '--input', '/dev/zero', '--out', join(dir, 'report')], expected: /cannot read \/dev\/zero: larger than the limit/ },
  ];
}

/** Scratch folder: a test image, a FIFO nobody writes to, and copies of ve-small with a NaN weight and of both models with huge final-norm gains (checksums recomputed). */
export function prepareScratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mue-reliability-cli-'));
  writeFileSync(join(dir, 'scene.png'), encodePng(veExample(0, { split: 'test', seed: 1, imageSize: 64 }).image));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  const damagedCopy = (name: string, damage: (data: Float32Array) => void, model = VE_MODEL) => {
    cpSync(model, join(dir, name), { recursive: true });
    const weightsPath = join(dir, name, 'model.safetensors');
    const { tensors, metadata } = decodeSafetensors(readFileSync(weightsPath));
    damage(tensors.get('decoder.final_norm.weight')!.data);
    const { sha256: _stale, ...rest } = metadata;
    writeFileSync(weightsPath, encodeSafetensors(tensors, { metadata: rest, sha256: nodeSha256 }));
  };
  damagedCopy('ve-nan', (data) => { data[0] = NaN; });
  damagedCopy('ve-huge', (data) => data.fill(3e38));
  damagedCopy('caption-huge', (data) => data.fill(3e38), CAPTION_MODEL);
  mkdirSync(join(dir, 'report'), { recursive: true });
  return dir;
}

export function runCase(testCase: CliCase): Promise<CliOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const command = [process.execPath, '--import', 'tsx', CLI, ...testCase.args];
    // A real pipe needs a shell: Node's own stdio 'pipe' is a socket, which /dev/stdin cannot reopen.
    const child = testCase.endlessStdin
      ? spawn('sh', ['-c', `cat /dev/zero | ${command.map(shellQuote).join(' ')}`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(command[0]!, command.slice(1), { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CASE_TIMEOUT_MS);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      const lines = stderr.trim().split('\n');
      const result: CliOutcome['result'] = timedOut ? 'hang'
        : exitCode === 0 ? 'accepted'
        : exitCode === 1 && lines.length === 1 && lines[0]!.startsWith('mue: ') && testCase.expected.test(lines[0]!) ? 'one-line-error' : 'unclear-error';
      resolve({ name: testCase.name, exitCode, timedOut, elapsedMs: Math.round(performance.now() - started), stderr: stderr.trim(), result });
    });
  });
}

const shellQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

export async function run(): Promise<Record<string, unknown>> {
  const dir = prepareScratch();
  try {
    const outcomes: CliOutcome[] = [];
    for (const testCase of cliCases(dir)) outcomes.push(await runCase(testCase));
    const count = (result: CliOutcome['result']) => outcomes.filter((o) => o.result === result).length;
    return {
      cli: {
        invocations: outcomes.length,
        oneLineErrorExit1: count('one-line-error'),
        unclearError: count('unclear-error'),
        accepted: count('accepted'),
        hung: count('hang'),
        slowestMs: Math.max(...outcomes.map((o) => o.elapsedMs)),
        details: outcomes,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await run(), null, 2));
}
