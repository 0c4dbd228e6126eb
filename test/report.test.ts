// `mue report`: renders the synthetic sample report and checks the HTML page and its SVG plots.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { Command } from 'commander';

import { registerReportCommand } from '../src/cli/commands/report.js';
import { AXIS_TITLES, chooseHighlightedSetting, paretoFront, renderReport, retentionTitle } from '../src/eval/report.js';
import type { EvaluationReport } from '../src/eval/types.js';

const samplePath = new URL('./fixtures/sample-report.json', import.meta.url);
let sample: EvaluationReport;
let workDirectory: string;

before(async () => {
  sample = JSON.parse(await readFile(samplePath, 'utf8')) as EvaluationReport;
  workDirectory = await mkdtemp(join(tmpdir(), 'mue-report-test-'));
});

after(async () => {
  await rm(workDirectory, { recursive: true, force: true });
});

const countSvgs = (html: string) => html.split('<svg').length - 1;

/** The axis titles each plot file must carry (vega writes title text verbatim into the SVG). */
function expectedTitles(report: EvaluationReport): Record<string, string[]> {
  return {
    'quality-vs-layer-reduction.svg': [AXIS_TITLES.layerReduction, retentionTitle(report)],
    'quality-vs-flop-ratio.svg': [AXIS_TITLES.flopRatio, retentionTitle(report)],
    'quality-vs-time-ratio.svg': [AXIS_TITLES.timeRatio, retentionTitle(report)],
    'pareto-front.svg': [AXIS_TITLES.timeRatio, retentionTitle(report)],
    'exit-histograms.svg': [AXIS_TITLES.exitLayer, AXIS_TITLES.exitCount],
    'decoder-by-position.svg': [AXIS_TITLES.position, AXIS_TITLES.decoderLayers],
    'depth-by-group.svg': ['Difficulty group: hypothesis family', AXIS_TITLES.meanDepth],
    'saturation.svg': [AXIS_TITLES.layer, AXIS_TITLES.similarity],
  };
}

describe('renderReport', () => {
  it('writes a self-contained report.html with every plot inline, the SVG files and the JSON', async () => {
    const outDir = join(workDirectory, 'sample');
    const { htmlPath, svgCount } = await renderReport(sample, outDir);
    assert.equal(htmlPath, join(outDir, 'report.html'));
    const html = await readFile(htmlPath, 'utf8');
    assert.equal(svgCount, 8);
    assert.ok(countSvgs(html) >= 7, `expected ≥ 7 inline SVGs, found ${countSvgs(html)}`);
    // Only same-document references (vega's clip paths are url(#clipN)); nothing to fetch.
    assert.doesNotMatch(html, /<script|<link|@import|url\((?!#)|src=/, 'no external scripts, stylesheets, fonts or images');
    assert.match(html, /synthetic fixture \(not a measurement\)/);
    assert.match(html, /Calibrated thresholds/);
    // One summary row per result: full depth plus every other method setting.
    assert.equal(html.match(/<tr><td>/g)?.length, sample.methods.length);

    const expected = expectedTitles(sample);
    assert.deepEqual((await readdir(join(outDir, 'plots'))).sort(), Object.keys(expected).sort());
    for (const [file, titles] of Object.entries(expected)) {
      const svg = await readFile(join(outDir, 'plots', file), 'utf8');
      assert.ok(svg.startsWith('<svg') && svg.length > 1000, `${file} is a non-empty SVG`);
      for (const title of titles) assert.ok(svg.includes(title), `${file} has axis title "${title}"`);
      assert.ok(html.includes(svg), `${file} is inlined in report.html`);
    }
    assert.deepEqual(JSON.parse(await readFile(join(outDir, 'report.json'), 'utf8')), sample);
  });

  it('renders a report with no methods, with a note', async () => {
    const { htmlPath, svgCount } = await renderReport({ ...sample, methods: [], calibration: undefined }, join(workDirectory, 'empty'));
    const html = await readFile(htmlPath, 'utf8');
    assert.equal(svgCount, 8);
    assert.ok(countSvgs(html) >= 7);
    assert.match(html, /no early-exit methods/);
    assert.doesNotMatch(html, /Calibrated thresholds/);
  });

  it('omits missing streams and escapes text inserted into the HTML', async () => {
    const joint = sample.methods.find((method) => method.method === 'mue-joint')!;
    const report: EvaluationReport = {
      ...sample,
      model: 'model <script>alert("x")</script> & co',
      similarityCurve: { joint: [0.5, 0.8, 0.9, 0.95, 0.97, 0.98], decoder: sample.similarityCurve.decoder },
      methods: [joint],
      calibration: undefined,
    };
    const outDir = join(workDirectory, 'joint');
    const { htmlPath } = await renderReport(report, outDir);
    const html = await readFile(htmlPath, 'utf8');
    assert.ok(!html.includes('<script>'));
    assert.match(html, /model &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; &amp; co/);
    const histograms = await readFile(join(outDir, 'plots', 'exit-histograms.svg'), 'utf8');
    assert.match(histograms, /joint encoder stream/);
    assert.doesNotMatch(histograms, /image encoder stream|text encoder stream/);
  });
});

describe('choosing the highlighted MuE setting', () => {
  it('prefers the setting closest to the calibrated thresholds, else the best with retention ≥ 0.99', () => {
    assert.equal(chooseHighlightedSetting(sample).result.setting, 'τ=0.97');
    const uncalibrated = chooseHighlightedSetting({ ...sample, calibration: undefined });
    assert.equal(uncalibrated.result.setting, 'τ=0.99');
    const lowRetention = sample.methods.filter((method) => method.method === 'mue' && method.retention < 0.99);
    assert.equal(chooseHighlightedSetting({ ...sample, calibration: undefined, methods: lowRetention }).result.setting, 'τ=0.95');
    assert.equal(chooseHighlightedSetting({ ...sample, methods: [] }).result, sample.fullDepth);
  });
});

describe('paretoFront', () => {
  it('keeps exactly the non-dominated points, sorted by time ratio', () => {
    const point = (setting: string, retention: number, timeRatio: number) => ({ method: 'm', setting, retention, timeRatio, layerReductionPercent: 0, flopRatio: 0 });
    const front = paretoFront([point('a', 1, 1), point('b', 0.9, 0.5), point('c', 0.85, 0.6), point('d', 0.99, 0.7), point('e', 0.99, 0.8)]);
    assert.deepEqual(front.map((p) => p.setting), ['b', 'd', 'a']);
  });
});

/** Runs `mue report <args>` on an in-process commander program; resolves to what it printed. */
async function runReport(args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  registerReportCommand(program);
  const log = mock.method(console, 'log', () => {});
  try {
    await program.parseAsync(['report', ...args], { from: 'user' });
    return log.mock.calls.map((call) => String(call.arguments[0])).join('\n');
  } finally {
    log.mock.restore();
  }
}

describe('mue report (in-process commander program)', () => {
  it('renders the sample report', async () => {
    const outDir = join(workDirectory, 'cli');
    const output = await runReport(['--input', samplePath.pathname, '--out', outDir]);
    assert.equal(output, `wrote ${join(outDir, 'report.html')} (8 plots)`);
  });

  it('reports a missing file, invalid JSON and missing fields clearly', async () => {
    const outDir = join(workDirectory, 'cli-bad');
    const missingPath = join(workDirectory, 'missing.json');
    await assert.rejects(runReport(['--input', missingPath, '--out', outDir]), { message: `cannot read ${missingPath}: file not found` });

    const brokenPath = join(workDirectory, 'broken.json');
    await writeFile(brokenPath, '{"model": ');
    await assert.rejects(runReport(['--input', brokenPath, '--out', outDir]), /broken\.json is not valid JSON/);

    const noMethodsPath = join(workDirectory, 'no-methods.json');
    const { methods: _dropped, ...withoutMethods } = sample;
    await writeFile(noMethodsPath, JSON.stringify(withoutMethods));
    await assert.rejects(runReport(['--input', noMethodsPath, '--out', outDir]), /no-methods\.json: field "methods" is missing or not an array \(expected the EvaluationReport JSON written by `mue eval`\)/);

    const badMethodPath = join(workDirectory, 'bad-method.json');
    await writeFile(badMethodPath, JSON.stringify({ ...sample, methods: [{ ...sample.methods[0], retention: 'high' }] }));
    await assert.rejects(runReport(['--input', badMethodPath, '--out', outDir]), /bad-method\.json: methods\[0\]\.retention must be a number/);
  });
});
