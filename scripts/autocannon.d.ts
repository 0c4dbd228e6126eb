// The part of autocannon's programmatic API that scripts/load-test.ts uses (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Request { method: string; path: string; headers: Record<string, string>; body: string }
    interface Options { url: string; connections: number; duration: number; requests: Request[]; timeout: number }
    interface Percentiles { p50: number; p99: number; mean: number; max: number }
    interface Result {
      duration: number;
      requests: { total: number };
      latency: Percentiles;
      statusCodeStats?: Record<string, { count: number }>;
      errors: number;
      timeouts: number;
    }
  }
  function autocannon(options: autocannon.Options): Promise<autocannon.Result>;
  export default autocannon;
}
