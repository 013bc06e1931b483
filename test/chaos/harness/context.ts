// What every scenario gets: the run's options, the model under test, a way to start the real
// server, capacity measured once per configuration, scaled durations, and a list of checks.
import { ENGINE_DEFAULTS } from '../../../src/inference/index.ts';
import { Clients } from './clients.ts';
import { closedLoop } from './load.ts';
import { httpGet } from './probes.ts';
import { ServerProcess } from './server-process.ts';
import type { Tally } from './stats.ts';

export interface ChaosOptions {
  /** Multiplies every scenario's duration (0.1 for a quick look; 1 for the numbers). */
  scale: number;
  /**
   * CPUs the server (and its workers) may use, as for taskset -c; pin the runner elsewhere
   * (`taskset -c 8-15 npm run test:chaos -- --server-cpus 0-3`) so the load generator does not
   * compete with the server, which a 2-core machine cannot avoid.
   */
  serverCpus?: string;
  /** Pixels each request carries: FP32 (default) or UINT8 (4× fewer bytes to send and parse). */
  datatype: 'FP32' | 'UINT8';
  /** Soak length; default 60 s × scale. */
  soakSeconds: number;
  /** Server settings for every scenario (a scenario's own settings win). */
  serverEnv: Record<string, string>;
  /** Bounds the checks use. */
  rejectP99Ms: number;
  healthP99Ms: number;
  readinessFlipMs: number;
  /** WORKER_HANG_TIMEOUT_MS of the hang scenario's server. */
  hangTimeoutMs: number;
  /** Where each scenario's server writes its log (`<scenario>.log`, `<scenario>.stderr.log`). */
  logDir: string;
}

export interface ModelUnderTest {
  repository: string;
  name: string;
  /** `name:version`: the model's label in metrics and worker snapshots. */
  key: string;
  /** [H, W, C]; read from the first server's metadata when not known up front. */
  shape: readonly [number, number, number] | undefined;
  maxBatchSize: number;
  maxQueueSize: number;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** Not judged in this run (ok stays true); the detail says why. */
  skipped?: boolean;
}

export interface ScenarioResult {
  scenario: string;
  tally: Tally;
  /** Key numbers for the summary (ms, img/s, bytes …), named with their unit. */
  numbers: Record<string, number | string>;
  checks: Check[];
  /** Outcome codes seen (e.g. "http 429 QUEUE_FULL": 1234). */
  codes: Record<string, number>;
  /** Warnings and errors the server logged, by message. */
  serverLog: Record<string, number>;
  seconds: number;
  /** Raw series for a closer look (the soak's memory samples), JSON only. */
  series?: Record<string, unknown>;
  /** Set when the scenario itself broke (an exception), not just a failed check. */
  crashed?: string;
}

export class Checks {
  readonly list: Check[] = [];

  expect(name: string, ok: boolean, detail: string): boolean {
    this.list.push({ name, ok, detail });
    return ok;
  }

  /** A check this run cannot judge: listed as skipped, with the reason. */
  skip(name: string, why: string): void {
    this.list.push({ name, ok: true, detail: why, skipped: true });
  }

  /** What holds for every scenario: no request without an answer, no unexpected answer. */
  noLossNoErrors(t: Tally): void {
    this.expect('no request lost (every one answered within its bound)', t.lost === 0, `lost ${t.lost}`);
    this.expect('no unexpected answer (500, 400, unknown status)', t.error === 0, `errors ${t.error}`);
  }
}

export class Context {
  private readonly capacities = new Map<string, number>();

  constructor(
    readonly options: ChaosOptions,
    readonly model: ModelUnderTest,
    private readonly print: (line: string) => void,
  ) {}

  log(scenario: string, message: string): void {
    this.print(`  [${scenario}] ${message}`);
  }

  /** Scaled duration in ms, never below minS seconds. */
  ms(seconds: number, minS = 1): number {
    return Math.round(Math.max(minS, seconds * this.options.scale) * 1000);
  }

  async startServer(label: string, env: Record<string, string> = {}): Promise<ServerProcess> {
    const server = await ServerProcess.start(label, { MODEL_REPOSITORY: this.model.repository, ...this.options.serverEnv, ...env }, this.options.logDir, this.options.serverCpus);
    if (!this.model.shape) {
      const { status, body } = await httpGet(server.httpPort, `/v2/models/${this.model.name}`);
      if (status !== 200) throw new Error(`model ${this.model.name}: metadata answered ${status} ${body.slice(0, 200)}`);
      const meta = JSON.parse(body) as { versions: string[]; inputs: Array<{ shape: number[] }> };
      const [, h, w, c] = meta.inputs[0]?.shape ?? [];
      if (!h || !w || !c) throw new Error(`model ${this.model.name}: unexpected input shape ${JSON.stringify(meta.inputs[0]?.shape)}`);
      this.model.shape = [h, w, c];
      this.model.key = `${this.model.name}:${meta.versions.at(-1) ?? '1'}`;
    }
    return server;
  }

  clients(server: ServerProcess): Clients {
    if (!this.model.shape) throw new Error('model shape unknown: start a server first');
    return new Clients({ httpPort: server.httpPort, grpcPort: server.grpcPort, model: this.model.name, shape: this.model.shape, datatype: this.options.datatype });
  }

  /** Inference workers of the servers started here (they inherit the runner's environment). */
  get workers(): number {
    return Number(this.options.serverEnv.WORKERS ?? process.env.WORKERS ?? ENGINE_DEFAULTS.WORKERS);
  }

  /**
   * Images per second the server completes with enough callers to keep every worker's batches
   * full (closed loop, half HTTP, half gRPC); measured once per server configuration.
   */
  async capacity(scenario: string, clients: Clients): Promise<number> {
    const key = JSON.stringify(this.options.serverEnv);
    const known = this.capacities.get(key);
    if (known !== undefined) return known;
    const callers = 2 * this.workers * this.model.maxBatchSize;
    await closedLoop(clients, callers, 1000); // warm the connections and the latency estimates
    const { completedPerS, results } = await closedLoop(clients, callers, this.ms(5, 3));
    const failed = results.filter((r) => r.outcome !== 'completed');
    if (failed.length > 0 || completedPerS <= 0) {
      throw new Error(`capacity run: ${failed.length} of ${results.length} requests did not complete (${failed[0]?.code ?? 'none completed'})`);
    }
    this.log(scenario, `capacity ${completedPerS.toFixed(1)} img/s (${callers} closed-loop callers)`);
    this.capacities.set(key, completedPerS);
    return completedPerS;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Polls `probe` every intervalMs until it returns true; false after timeoutMs. */
export async function waitUntil(probe: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (performance.now() > end) return false;
    await sleep(intervalMs);
  }
}

/** Warning and error lines of a server's log, counted by message. */
export function serverLogSummary(server: ServerProcess): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of server.logs) if (l.level >= 40) out[l.msg] = (out[l.msg] ?? 0) + 1;
  return out;
}
