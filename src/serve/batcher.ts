// Dynamic batching: requests with identical options that arrive within maxWaitMs of each other
// run as one batch of up to maxBatch. One batch runs at a time (one model, two cores); a bounded
// queue and a per-request deadline give back-pressure instead of unbounded latency.

export interface BatcherLimits {
  /** Most requests run together in one batch. */
  maxBatch: number;
  /** How long the oldest queued request may wait for others to join its batch. */
  maxWaitMs: number;
  /** Most requests waiting (not yet running); more are refused with QueueFullError. */
  maxQueue: number;
  /** A request not answered within this time (queue + run) is rejected with RequestTimeoutError. */
  timeoutMs: number;
}

/** Runs one batch; outputs[i] answers inputs[i]. Every input in a batch shares one options object. */
export type RunBatch<Options, Input, Output> = (options: Options, inputs: Input[]) => Promise<Output[]>;

export interface Batched<Output> {
  output: Output;
  /** Requests in the batch this one ran in. */
  batchSize: number;
  /** Time spent waiting in the queue before the batch started. */
  queueMs: number;
}

export class QueueFullError extends Error {}
export class RequestTimeoutError extends Error {}
/** A queued request that shutdown gave up on before it ran. */
export class ShuttingDownError extends Error {}

interface Pending<Input, Output> {
  input: Input;
  enqueuedAt: number;
  state: 'queued' | 'running' | 'settled';
  timer: NodeJS.Timeout;
  resolve(value: Batched<Output>): void;
  reject(error: Error): void;
}

interface Group<Options, Input, Output> { options: Options; items: Array<Pending<Input, Output>> }

export class DynamicBatcher<Options, Input, Output> {
  /** Queued requests by the JSON of their options; Map order = order of first arrival. */
  private readonly groups = new Map<string, Group<Options, Input, Output>>();
  private queued = 0;
  private running = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private stopped: Error | undefined;

  constructor(
    private readonly runBatch: RunBatch<Options, Input, Output>,
    readonly limits: BatcherLimits,
    private readonly onBatchStart: (size: number) => void = () => {},
  ) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isFinite(value) || value < (name === 'maxWaitMs' ? 0 : 1)) throw new Error(`${name} must be ${name === 'maxWaitMs' ? '≥ 0' : '≥ 1'} (got ${value})`);
    }
  }

  /** Resolves once no batch is running and none is queued (graceful shutdown awaits it). */
  async drain(): Promise<void> {
    while (this.running || this.queued > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /**
   * The end of a bounded shutdown drain: rejects every request still waiting (not the batch
   * running) and every later submit with `error`. Returns how many were waiting.
   */
  stop(error: Error): number {
    this.stopped = error;
    let rejected = 0;
    for (const group of this.groups.values()) {
      for (const item of group.items) {
        settle(item, (pending) => pending.reject(error));
        rejected++;
      }
    }
    this.groups.clear();
    this.queued = 0;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    return rejected;
  }

  /** Requests waiting for a batch (not counting the one running). */
  get queueDepth(): number {
    return this.queued;
  }

  /** Queues one request; `options` must be a plain JSON-able object (its JSON is the grouping key). */
  submit(options: Options, input: Input): Promise<Batched<Output>> {
    if (this.stopped) return Promise.reject(this.stopped);
    if (this.queued >= this.limits.maxQueue) return Promise.reject(new QueueFullError(`the queue is full (${this.limits.maxQueue} requests waiting)`));
    const key = JSON.stringify(options);
    return new Promise((resolve, reject) => {
      const item: Pending<Input, Output> = {
        input, enqueuedAt: performance.now(), state: 'queued', resolve, reject,
        timer: setTimeout(() => this.expire(key, item), this.limits.timeoutMs),
      };
      const group = this.groups.get(key) ?? { options, items: [] };
      group.items.push(item);
      this.groups.set(key, group);
      this.queued++;
      this.schedule();
    });
  }

  private expire(key: string, item: Pending<Input, Output>): void {
    if (item.state === 'queued') {
      const group = this.groups.get(key)!;
      group.items.splice(group.items.indexOf(item), 1);
      if (group.items.length === 0) this.groups.delete(key);
      this.queued--;
    }
    item.state = 'settled';
    item.reject(new RequestTimeoutError(`no answer within ${this.limits.timeoutMs} ms`));
  }

  /**
   * Starts, among the groups that are full or have waited long enough, the one whose oldest
   * request is oldest (so a busy group cannot starve the others); else wakes up when one is due.
   */
  private schedule(): void {
    if (this.running) return;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const now = performance.now();
    let earliestDeadline = Infinity;
    let due: [string, Group<Options, Input, Output>] | undefined;
    for (const [key, group] of this.groups) {
      const deadline = group.items[0]!.enqueuedAt + this.limits.maxWaitMs;
      if (group.items.length >= this.limits.maxBatch || deadline <= now) {
        if (!due || group.items[0]!.enqueuedAt < due[1].items[0]!.enqueuedAt) due = [key, group];
      } else {
        earliestDeadline = Math.min(earliestDeadline, deadline);
      }
    }
    if (due) {
      const [key, group] = due;
      const items = group.items.splice(0, this.limits.maxBatch);
      if (group.items.length === 0) this.groups.delete(key);
      void this.run(group.options, items);
      return;
    }
    if (earliestDeadline < Infinity) this.wakeTimer = setTimeout(() => this.schedule(), earliestDeadline - now);
  }

  private async run(options: Options, items: Array<Pending<Input, Output>>): Promise<void> {
    this.running = true;
    this.queued -= items.length;
    const started = performance.now();
    for (const item of items) item.state = 'running';
    try {
      this.onBatchStart(items.length);
      const outputs = await this.runBatch(options, items.map((item) => item.input));
      if (outputs.length !== items.length) throw new Error(`the batch returned ${outputs.length} results for ${items.length} requests`);
      items.forEach((item, index) => settle(item, (pending) => pending.resolve({ output: outputs[index]!, batchSize: items.length, queueMs: started - pending.enqueuedAt })));
    } catch (error) {
      for (const item of items) settle(item, (pending) => pending.reject(error instanceof Error ? error : new Error(String(error))));
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}

/** Answers a request unless its deadline already rejected it. */
function settle<Input, Output>(item: Pending<Input, Output>, answer: (item: Pending<Input, Output>) => void): void {
  if (item.state === 'settled') return;
  clearTimeout(item.timer);
  item.state = 'settled';
  answer(item);
}
