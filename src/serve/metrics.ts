// Prometheus metrics for the server: latency, batching, queue depth, where requests exited, FLOPs saved.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Telemetry } from '../runtime/mueModel.js';

/** 1..n, so every exit layer is its own bucket. */
const layerBuckets = (layers: number): number[] => Array.from({ length: layers }, (_, index) => index + 1);

export class ServerMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'route' | 'status'>;
  readonly batchSize: Histogram;
  readonly queueDepth: Gauge;
  private readonly encoderExitLayer: Histogram<'stream'>;
  private readonly decoderTokenExitLayer: Histogram;
  private readonly flopsSaved: Histogram;
  private readonly flopsExecuted: Counter;
  private readonly flopsFullDepth: Counter;

  constructor(config: { encoderLayers: number; decoderLayers: number }, queueDepth: () => number, batchSizes: number[]) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requestDuration = new Histogram({
      name: 'mue_request_duration_seconds', help: 'HTTP request latency', labelNames: ['route', 'status'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.batchSize = new Histogram({ name: 'mue_batch_size', help: 'Requests per model batch', buckets: batchSizes, registers });
    this.queueDepth = new Gauge({ name: 'mue_queue_depth', help: 'Requests waiting for a batch', registers, collect() { this.set(queueDepth()); } });
    this.encoderExitLayer = new Histogram({
      name: 'mue_encoder_exit_layer', help: 'Encoder layer at which each stream exited', labelNames: ['stream'],
      buckets: layerBuckets(config.encoderLayers), registers,
    });
    this.decoderTokenExitLayer = new Histogram({
      name: 'mue_decoder_token_exit_layer', help: 'Decoder layer at which each generated token exited',
      buckets: layerBuckets(config.decoderLayers), registers,
    });
    this.flopsSaved = new Histogram({
      name: 'mue_flops_saved_ratio', help: 'Per request: 1 - FLOPs executed / FLOPs at full depth',
      buckets: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], registers,
    });
    this.flopsExecuted = new Counter({ name: 'mue_flops_executed_total', help: 'FLOPs executed', registers });
    this.flopsFullDepth = new Counter({ name: 'mue_flops_full_depth_total', help: 'FLOPs the same requests would cost at full depth', registers });
  }

  observeTelemetry(telemetry: Telemetry): void {
    for (const stream of ['image', 'text', 'joint'] as const) {
      const layers = telemetry[`${stream}Layers`];
      if (layers !== undefined) this.encoderExitLayer.observe({ stream }, layers);
    }
    for (const layers of telemetry.tokenLayers) this.decoderTokenExitLayer.observe(layers);
    this.flopsSaved.observe(1 - telemetry.flops / telemetry.fullDepthFlops);
    this.flopsExecuted.inc(telemetry.flops);
    this.flopsFullDepth.inc(telemetry.fullDepthFlops);
  }
}
