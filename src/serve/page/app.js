// The demo page: pick, generate or upload an image, ask the server, draw where each stream and word exited.
const $ = (id) => document.getElementById(id);
const state = { model: undefined, image: undefined };

async function api(path, init) {
  const response = await fetch(path, init);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

/** The thresholds this model reads: one per encoder stream, then the decoder's. */
function thresholdNames(model) {
  const streams = model.encoderMode === 'joint' ? ['joint'] : ['image', 'text'];
  return [...streams, 'decoder'].map((stream) => `${stream}Threshold`);
}

function showError(error) {
  $('error').textContent = error ? String(error.message ?? error) : '';
}

function setImage(dataUrl, note) {
  state.image = dataUrl;
  $('preview').src = dataUrl;
  $('example-note').textContent = note;
}

async function generate(index) {
  showError();
  const example = await api(`/v1/example?index=${encodeURIComponent(index)}`);
  $('example-index').value = example.index;
  if (example.hypothesis !== undefined) {
    $('hypothesis').value = example.hypothesis;
    setImage(example.image, `SceneWorld test example ${example.index}; its label is "${example.label}".`);
  } else {
    setImage(example.image, `SceneWorld test example ${example.index}; a reference caption: "${example.captions[0]}".`);
  }
}

function upload(file) {
  const reader = new FileReader();
  reader.onload = () => setImage(reader.result, `${file.name} (resized to ${state.model.imageSize}×${state.model.imageSize} by the server)`);
  reader.onerror = () => showError(reader.error);
  reader.readAsDataURL(file);
}

function buildThresholdInputs(model) {
  for (const name of thresholdNames(model)) {
    const row = document.createElement('label');
    row.className = 'threshold';
    const value = model.defaultThresholds[name] < 1 ? model.defaultThresholds[name] : 0.9;
    row.innerHTML = `<span>${name.replace('Threshold', '')}</span><input type="range" min="0" max="1" step="0.01"><output></output>`;
    const [input, output] = [row.querySelector('input'), row.querySelector('output')];
    input.id = `threshold-${name}`;
    input.value = String(value);
    output.textContent = input.value;
    input.addEventListener('input', () => { output.textContent = input.value; });
    $('thresholds').append(row);
  }
}

async function ask() {
  showError();
  if (!state.image) return showError('pick, generate or upload an image first');
  const model = state.model;
  const endpoint = model.task === 've' ? '/v1/entail' : '/v1/caption';
  const body = { image: state.image };
  if (model.task === 've') body.hypothesis = $('hypothesis').value;
  const fullDepth = { ...body };
  for (const name of thresholdNames(model)) {
    body[name] = Number($(`threshold-${name}`).value);
    fullDepth[name] = 1;
  }
  const post = (payload) => api(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  $('submit').disabled = true;
  try {
    // The full-depth run gives the measured time the exits saved on this very input; it goes first so
    // every layer's graph is warm when the run with exits is timed.
    const full = await post(fullDepth);
    const withExits = await post(body);
    render(withExits, full);
  } catch (error) {
    showError(error);
  } finally {
    $('submit').disabled = false;
  }
}

function render(result, full) {
  const model = state.model;
  const { telemetry } = result;
  const text = result.answer ?? result.caption;
  $('answer').textContent = text;
  const flopShare = telemetry.flops / telemetry.fullDepthFlops;
  const savedMs = full.telemetry.timeMs - telemetry.timeMs;
  $('savings').textContent = `FLOPs: ${(100 * flopShare).toFixed(1)}% of full depth (${(100 * (1 - flopShare)).toFixed(1)}% saved). `
    + `Time: ${telemetry.timeMs.toFixed(1)} ms with exits vs ${full.telemetry.timeMs.toFixed(1)} ms at full depth `
    + `(${savedMs >= 0 ? 'saved' : 'lost'} ${Math.abs(savedMs).toFixed(1)} ms). `
    + `Full depth answers "${full.answer ?? full.caption}".`;

  const table = $('exits');
  table.replaceChildren();
  const group = (title) => {
    const row = table.insertRow();
    row.className = 'group';
    const cell = document.createElement('th');
    cell.colSpan = Math.max(model.encoderLayers, model.decoderLayers) + 2;
    cell.textContent = title;
    row.append(cell);
  };
  const exitRow = (label, used, layers) => {
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
  group(`Encoder (${model.encoderLayers} layers)`);
  for (const stream of ['image', 'text', 'joint']) {
    const used = telemetry[`${stream}Layers`];
    if (used !== undefined) exitRow(`${stream} stream`, used, model.encoderLayers);
  }
  group(`Decoder (${model.decoderLayers} layers), one row per generated word`);
  const words = text.split(' ');
  telemetry.tokenLayers.forEach((used, position) => exitRow(words[position] ?? '<end>', used, model.decoderLayers));
  $('result-panel').hidden = false;
}

async function start() {
  try {
    state.model = await api('/v1/model');
    const { task, encoderLayers, decoderLayers, imageSize } = state.model;
    $('model-info').textContent = `${task === 've' ? 'visual entailment' : 'captioning'} model: ${encoderLayers} encoder + ${decoderLayers} decoder layers, ${imageSize}×${imageSize} images`;
    $('hypothesis-label').hidden = task !== 've';
    $('caption-note').hidden = task === 've';
    buildThresholdInputs(state.model);
    $('generate').addEventListener('click', () => generate($('example-index').value).catch(showError));
    $('random').addEventListener('click', () => generate(Math.floor(Math.random() * 100000)).catch(showError));
    $('upload').addEventListener('change', (event) => { if (event.target.files[0]) upload(event.target.files[0]); });
    $('submit').addEventListener('click', ask);
    await generate(0);
  } catch (error) {
    showError(error);
  }
}

start();
