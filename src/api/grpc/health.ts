// Standard gRPC health checking (grpc.health.v1.Health Check / Watch, via grpc-health-check):
// what Kubernetes gRPC probes and grpc_health_probe call.
//
//   ""  (and each of our service names)  SERVING when the server is ready: setServing(true) (the
//        default), not draining, and the inference core has live workers; else NOT_SERVING.
//   "<model name>"                        SERVING when the model's newest version is READY.
//
// The inference core has no model lifecycle events, so statuses are recomputed by polling
// (every second by default) and at once on setServing; a status is set only when it changes,
// so Watch streams see changes only. A model that goes away stays known, as NOT_SERVING.
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Server } from '@grpc/grpc-js';
import type { ApiDeps } from '../deps.ts';
import { CLASSIFIER_SERVICE_NAME, INFERENCE_SERVICE_NAME } from './proto.ts';

export const OVERALL_SERVICE_NAMES = ['', INFERENCE_SERVICE_NAME, CLASSIFIER_SERVICE_NAME] as const;
export const DEFAULT_HEALTH_POLL_MS = 1000;

export class HealthStatuses {
  private readonly impl = new HealthImplementation();
  private readonly current = new Map<string, ServingStatus>();
  private serving = true;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly deps: Pick<ApiDeps, 'service' | 'edge'>, private readonly pollMs = DEFAULT_HEALTH_POLL_MS) {
    this.refresh();
  }

  addToServer(server: Server): void {
    this.impl.addToServer(server);
  }

  /** Starts polling; the timer does not keep the process alive. */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.refresh(), this.pollMs);
    this.timer.unref();
  }

  setServing(serving: boolean): void {
    this.serving = serving;
    this.refresh();
  }

  /** ServerReady and the overall health status. */
  isServerReady(): boolean {
    return this.serving && !this.stopped && this.deps.edge.isReady();
  }

  refresh(): void {
    const overall: ServingStatus = this.isServerReady() ? 'SERVING' : 'NOT_SERVING';
    for (const name of OVERALL_SERVICE_NAMES) this.set(name, overall);
    const models = new Set(this.deps.service.listModels().map((m) => m.name));
    for (const name of models) this.set(name, !this.stopped && this.deps.service.isReady(name) ? 'SERVING' : 'NOT_SERVING');
    for (const name of this.current.keys()) {
      if (!models.has(name) && !(OVERALL_SERVICE_NAMES as readonly string[]).includes(name)) this.set(name, 'NOT_SERVING');
    }
  }

  /** Stops polling and reports everything NOT_SERVING (shutdown). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.refresh();
  }

  private set(name: string, status: ServingStatus): void {
    if (this.current.get(name) === status) return;
    this.current.set(name, status);
    this.impl.setStatus(name, status);
  }
}
