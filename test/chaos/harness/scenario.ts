// The frame every scenario runs in: a fresh server, clients, checks; whatever happens, the
// clients are closed and the server stopped, and the result says what was seen.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RequestResult } from './clients.ts';
import type { Clients } from './clients.ts';
import { Checks, serverLogSummary, type Context, type ScenarioResult } from './context.ts';
import type { ServerProcess } from './server-process.ts';
import { codes, tally } from './stats.ts';

export interface ScenarioRun {
  server: ServerProcess;
  clients: Clients;
  checks: Checks;
  numbers: Record<string, number | string>;
  series: Record<string, unknown>;
  log(message: string): void;
}

export type Scenario = (ctx: Context) => Promise<ScenarioResult>;

export async function withServer(
  ctx: Context,
  name: string,
  env: Record<string, string>,
  body: (run: ScenarioRun) => Promise<RequestResult[]>,
): Promise<ScenarioResult> {
  const started = performance.now();
  const checks = new Checks();
  const numbers: Record<string, number | string> = {};
  const series: Record<string, unknown> = {};
  let results: RequestResult[] = [];
  let crashed: string | undefined;
  let server: ServerProcess | undefined;
  let clients: Clients | undefined;
  // Latencies measured here are only as good as the runner's own event loop.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  try {
    server = await ctx.startServer(name, env);
    ctx.log(name, `server up (pid ${server.pid}, http ${server.httpPort}, grpc ${server.grpcPort})`);
    clients = ctx.clients(server);
    results = await body({ server, clients, checks, numbers, series, log: (m) => ctx.log(name, m) });
  } catch (err) {
    crashed = (err as Error).stack ?? String(err);
    if (server) crashed += `\n${await server.diagnostics()}`;
    checks.expect('scenario ran to the end', false, (err as Error).message);
  } finally {
    lag.disable();
    numbers['runner event-loop lag p99 ms'] = Math.round(lag.percentile(99) / 1e4) / 100;
    clients?.close();
    if (server && !server.hasExited) {
      const exit = await server.stop();
      if (exit.code !== 0 && !crashed) checks.expect('server stopped cleanly after the scenario', false, `exit ${exit.code ?? exit.signal}`);
    }
  }
  return {
    scenario: name,
    tally: tally(results),
    numbers,
    checks: checks.list,
    codes: codes(results, ['completed', 'rejected', 'retryable', 'expired', 'cancelled', 'error', 'lost']),
    serverLog: server ? serverLogSummary(server) : {},
    seconds: (performance.now() - started) / 1000,
    ...(Object.keys(series).length ? { series } : {}),
    ...(crashed ? { crashed } : {}),
  };
}
