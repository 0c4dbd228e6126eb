// The in-browser demo page (dist/browser/index.html): loads a model folder with MuEModel.load(url),
// takes a SceneWorld scene drawn on the page, a chosen image or paint, and answers or captions it on
// this page, showing where each stream and token exited and the time taken.
import { captionExample, veExample } from '../data/sceneworld.js';
import type { RgbPixels } from '../data/preprocess.js';
import { MuEModel, readImage, wasmThreads, type CaptionResult, type EntailResult, type InferenceOptions, type LoadProgress } from './index.js';

const FULL_DEPTH: InferenceOptions = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };
/** Used when the host has no models.json: the shipped models in a models/ folder beside the page. */
const DEFAULT_MODELS = [{ name: 've-small', url: 'models/ve-small/' }, { name: 'caption-small', url: 'models/caption-small/' }];
const CANVAS_SIZE = 256;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const canvas = $<HTMLCanvasElement>('canvas');
const context = canvas.getContext('2d')!;

const state: {
  model?: MuEModel;
  /** Exact model input for a SceneWorld scene; undefined once the picture came from elsewhere. */
  scene?: RgbPixels;
  /** The chosen file, read with readImage as given, until it is painted over. */
  file?: File;
} = {};

function showError(error?: unknown): void {
  $('error').textContent = error === undefined ? '' : String((error as Error).message ?? error);
}

/** The picture the model will see, at its input size. */
async function modelImage(model: MuEModel): Promise<RgbPixels> {
  if (state.scene) return state.scene;
  if (state.file) return readImage(state.file, model.imageResize);
  return readImage(canvas, model.imageResize);
}

function drawPixels(image: RgbPixels): void {
  const rgba = new ImageData(image.width, image.height);
  for (let i = 0, j = 0; j < image.pixels.length; i += 4, j += 3) {
    rgba.data.set([image.pixels[j]!, image.pixels[j + 1]!, image.pixels[j + 2]!, 255], i);
  }
  const small = new OffscreenCanvas(image.width, image.height);
  small.getContext('2d')!.putImageData(rgba, 0, 0);
  context.imageSmoothingEnabled = false;
  context.drawImage(small, 0, 0, CANVAS_SIZE, CANVAS_SIZE);
}

function drawScene(index: number): void {
  const model = state.model;
  if (!model) return;
  const options = { split: 'test' as const, seed: 1, imageSize: model.config.imageSize };
  const example = model.task === 've' ? veExample(index, options) : captionExample(index, options);
  $<HTMLInputElement>('example-index').value = String(index);
  drawPixels(example.image);
  state.scene = example.image;
  state.file = undefined;
  if ('hypothesis' in example) {
    $<HTMLInputElement>('hypothesis').value = example.hypothesis;
    $('example-note').textContent = `SceneWorld test scene ${index}; its label is "${example.label}".`;
  } else {
    $('example-note').textContent = `SceneWorld test scene ${index}; a reference caption: "${example.captions[0]}".`;
  }
}

async function chooseFile(file: File): Promise<void> {
  const bitmap = await createImageBitmap(file);
  const side = Math.min(bitmap.width, bitmap.height);
  context.imageSmoothingEnabled = true;
  context.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, CANVAS_SIZE, CANVAS_SIZE);
  state.scene = undefined;
  state.file = file;
  $('example-note').textContent = `${file.name}: centre-cropped and resized to ${state.model?.config.imageSize ?? '?'} pixels by the page.`;
}

function enablePainting(): void {
  let painting = false;
  const paint = (event: PointerEvent) => {
    if (!painting) return;
    const box = canvas.getBoundingClientRect();
    context.fillStyle = $<HTMLInputElement>('brush-colour').value;
    context.beginPath();
    context.arc(((event.clientX - box.left) * CANVAS_SIZE) / box.width, ((event.clientY - box.top) * CANVAS_SIZE) / box.height, 10, 0, 2 * Math.PI);
    context.fill();
  };
  canvas.addEventListener('pointerdown', (event) => {
    painting = true;
    // From now on the model sees the canvas, paint included.
    state.scene = undefined;
    state.file = undefined;
    $('example-note').textContent = 'your painting (the canvas, resized by the page)';
    paint(event);
  });
  canvas.addEventListener('pointermove', paint);
  for (const type of ['pointerup', 'pointerleave'] as const) canvas.addEventListener(type, () => { painting = false; });
  $('clear').addEventListener('click', () => {
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, CANVAS_SIZE, CANVAS_SIZE);
    state.scene = undefined;
    state.file = undefined;
    $('example-note').textContent = 'a blank canvas: paint on it';
  });
}

async function loadModel(url: string): Promise<void> {
  showError();
  $<HTMLButtonElement>('submit').disabled = true;
  await state.model?.dispose();
  state.model = undefined;
  const progress = $<HTMLProgressElement>('load-progress');
  const loaded = new Map<string, { loaded: number; total: number }>();
  const started = performance.now();
  const onProgress = (event: LoadProgress) => {
    if (event.file && event.loaded !== undefined) loaded.set(event.file, { loaded: event.loaded, total: event.total ?? event.loaded });
    const sums = [...loaded.values()].reduce((a, b) => ({ loaded: a.loaded + b.loaded, total: a.total + b.total }), { loaded: 0, total: 0 });
    if (sums.total > 0) progress.value = (100 * sums.loaded) / sums.total;
    $('load-note').textContent = event.status === 'ready' ? '' : `${event.status} ${event.file ?? ''} ${sums.loaded ? `(${(sums.loaded / 1e6).toFixed(1)} MB)` : ''}`;
  };
  const model = await MuEModel.load(url, { progress_callback: onProgress });
  const { task, config, defaultThresholds } = model;
  // One warm-up request (a blank picture, full depth): the first run of each graph is several times
  // slower than the next, and the time shown for the user's first question should be the steady one.
  $('load-note').textContent = 'warming up…';
  const blank = { width: config.imageSize, height: config.imageSize, pixels: new Uint8Array(config.imageSize * config.imageSize * 3) };
  if (task === 've') await model.entail({ image: blank, hypothesis: 'a' }, FULL_DEPTH);
  else await model.caption({ image: blank }, { ...FULL_DEPTH, maxLength: 2 });
  state.model = model;
  const loadMs = performance.now() - started;
  $('model-info').textContent = `${task === 've' ? 'visual entailment' : 'captioning'} model ${url}: ${config.encoderLayers} encoder + ${config.decoderLayers} decoder layers, `
    + `${config.imageSize}×${config.imageSize} images; exit thresholds (1 = never exits): `
    + (config.encoderMode === 'joint' ? ['joint', 'decoder'] : ['image', 'text', 'decoder'])
      .map((stream) => `${stream} ${defaultThresholds[`${stream}Threshold` as keyof typeof defaultThresholds]}`).join(', ');
  $('load-note').textContent = `loaded, graphs built and warmed up in ${(loadMs / 1000).toFixed(1)} s; onnxruntime-web wasm, ${wasmThreads()} thread(s)`
    + `${crossOriginIsolated ? '' : ' (page not cross-origin isolated: no threads)'}`;
  $('hypothesis-label').hidden = task !== 've';
  $('caption-note').hidden = task === 've';
  $<HTMLButtonElement>('submit').disabled = false;
  $('submit').textContent = task === 've' ? 'Ask the model' : 'Caption it';
  document.body.dataset.model = url;
  drawScene(Number($<HTMLInputElement>('example-index').value) || 0);
}

async function ask(): Promise<void> {
  showError();
  const model = state.model;
  if (!model) return showError('the model is still loading');
  const button = $<HTMLButtonElement>('submit');
  button.disabled = true;
  try {
    const image = await modelImage(model);
    const options = $<HTMLInputElement>('use-exits').checked ? {} : FULL_DEPTH;
    const result: EntailResult | CaptionResult = model.task === 've'
      ? await model.entail({ image, hypothesis: $<HTMLInputElement>('hypothesis').value }, options)
      : await model.caption({ image }, options);
    render(model, result);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

function render(model: MuEModel, result: EntailResult | CaptionResult): void {
  const { telemetry } = result;
  const text = 'answer' in result ? result.answer : result.caption;
  $('answer').textContent = text;
  const flopShare = telemetry.flops / telemetry.fullDepthFlops;
  $('timing').textContent = `${telemetry.timeMs.toFixed(1)} ms in this browser; FLOPs: ${(100 * flopShare).toFixed(1)}% of full depth `
    + `(${$<HTMLInputElement>('use-exits').checked ? 'MuE exits' : 'full depth'}).`;
  const { encoderLayers, decoderLayers } = model.config;
  const table = $<HTMLTableElement>('exits');
  table.replaceChildren();
  const group = (title: string) => {
    const row = table.insertRow();
    row.className = 'group';
    const cell = document.createElement('th');
    cell.colSpan = Math.max(encoderLayers, decoderLayers) + 2;
    cell.textContent = title;
    row.append(cell);
  };
  const exitRow = (label: string, used: number, layers: number) => {
    const row = table.insertRow();
    row.className = 'exit-row';
    const head = document.createElement('th');
    head.textContent = label;
    row.append(head);
    for (let layer = 1; layer <= layers; layer++) {
      const cell = row.insertCell();
      cell.className = `layer ${layer < used ? 'run' : layer === used ? 'exit' : 'skipped'}`;
      cell.textContent = String(layer);
      cell.title = layer <= used ? `layer ${layer} ran` : `layer ${layer} skipped`;
    }
    const summary = row.insertCell();
    summary.className = 'summary';
    summary.textContent = `exited at ${used} of ${layers}`;
  };
  group(`Encoder (${encoderLayers} layers)`);
  for (const [stream, used] of [['image', telemetry.imageLayers], ['text', telemetry.textLayers], ['joint', telemetry.jointLayers]] as const) {
    if (used !== undefined) exitRow(`${stream} stream`, used, encoderLayers);
  }
  group(`Decoder (${decoderLayers} layers), one row per generated word`);
  const words = text.split(' ');
  telemetry.tokenLayers.forEach((used, position) => exitRow(words[position] ?? '<end>', used, decoderLayers));
  $('result-panel').hidden = false;
}

async function modelList(): Promise<Array<{ name: string; url: string }>> {
  try {
    const response = await fetch('models.json');
    if (response.ok) return await response.json();
  } catch {
    // No models.json on this host: fall back to the shipped models' folder names.
  }
  return DEFAULT_MODELS;
}

async function start(): Promise<void> {
  enablePainting();
  $('generate').addEventListener('click', () => drawScene(Number($<HTMLInputElement>('example-index').value) || 0));
  $('random').addEventListener('click', () => drawScene(Math.floor(Math.random() * 100000)));
  $<HTMLInputElement>('upload').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) chooseFile(file).catch(showError);
  });
  $('submit').addEventListener('click', () => void ask());
  const select = $<HTMLSelectElement>('model');
  const models = await modelList();
  for (const { name, url } of models) select.add(new Option(name, url));
  const requested = new URLSearchParams(location.search).get('model');
  if (requested) select.value = models.find((m) => m.name === requested)?.url ?? requested;
  select.addEventListener('change', () => loadModel(select.value).catch(showError));
  await loadModel(select.value);
}

start().catch(showError);
