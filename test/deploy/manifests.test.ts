// Every YAML under docker/ (Compose, Prometheus, Kubernetes, KServe), parsed and checked against
// the server itself so that they cannot drift from it: ports against the config the manifests
// give the server, probe and scrape paths against the HTTP app's real routes (and what they answer
// when ready and when draining), setting names and values through src/config.ts, the drain
// timeout against the grace periods, selectors against the pods' labels.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, flagsToSettings, loadConfig, type Config } from '../../src/config.ts';
import { startHarness, type Harness } from '../api/http/harness.ts';
import { finalStage, onlyInstruction, readDockerfile, REPO_ROOT } from './dockerfile.ts';

type Obj = Record<string, unknown>;
const DOCKER_DIR = path.join(REPO_ROOT, 'docker');
/** Stopping the inference workers after the drain; the grace periods must leave this much. */
const WORKER_STOP_MARGIN_S = 5;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  }).sort();
}

const documents = yamlFiles(DOCKER_DIR).flatMap((file) => parseAllDocuments(readFileSync(file, 'utf8')).map((doc, index) => ({
  file: path.relative(REPO_ROOT, file), index, errors: doc.errors.map((e) => e.message), value: doc.toJS() as Obj | null,
})));
const resources = documents.filter((d) => d.value && typeof d.value.kind === 'string') as Array<{ file: string; value: Obj }>;

function resource(kind: string, file?: string, name?: string): Obj {
  const found = resources.filter((r) => r.value.kind === kind && (file === undefined || r.file === file) &&
    (name === undefined || (r.value.metadata as Obj).name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}${file ? ` in ${file}` : ''}, found ${found.length}`);
  return found[0]!.value;
}

function fileDoc(file: string): Obj {
  const doc = documents.find((d) => d.file === file);
  if (!doc?.value) throw new Error(`${file} is missing or empty`);
  return doc.value;
}

const get = (o: unknown, ...keys: Array<string | number>): unknown =>
  keys.reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as Record<string | number, unknown>)[k]), o);
const arr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

/** Whether the server knows this setting (src/config.ts's flag parser refuses unknown names). */
function isSetting(name: string): boolean {
  try {
    flagsToSettings([`--${name.toLowerCase().replaceAll('_', '-')}=1`]);
    return true;
  } catch {
    return false;
  }
}

/** Literal environment variables of a container (name → value); valueFrom entries get undefined. */
function containerEnv(container: Obj): Map<string, string | undefined> {
  return new Map(arr(container.env).map((e) => [e.name as string, e.value as string | undefined]));
}

function literalEnv(env: Map<string, string | undefined>): Record<string, string> {
  return Object.fromEntries([...env].filter((e): e is [string, string] => e[1] !== undefined));
}

function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(n) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as Record<string, number>)[unit!]!;
  }
  return total;
}

const selectorMatches = (selector: unknown, labels: unknown) =>
  Object.entries((selector ?? {}) as Record<string, string>).every(([k, v]) => (labels as Record<string, string>)[k] === v);

describe('deployment manifests', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ models: { tiny: { seed: 1 } } });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  /** The HTTP app answers GET `url` with `status`, as ready and while draining. */
  async function answers(url: string, draining: boolean): Promise<number> {
    expect(h.app.hasRoute({ method: 'GET', url }), `GET ${url} is a route of the HTTP app`).toBe(true);
    h.edge.setDraining(draining);
    try {
      return (await h.app.inject({ method: 'GET', url })).statusCode;
    } finally {
      h.edge.setDraining(false);
    }
  }
  const expectReadiness = async (url: string) => {
    expect(await answers(url, false)).toBe(200);
    expect(await answers(url, true)).toBe(503);
  };
  const expectLiveness = async (url: string) => {
    expect(await answers(url, false)).toBe(200);
    expect(await answers(url, true)).toBe(200);
  };

  it('parses every YAML under docker/', () => {
    const files = new Set(documents.map((d) => d.file));
    expect([...files]).toEqual(expect.arrayContaining([
      'docker/compose.yaml', 'docker/prometheus.yml', 'docker/k8s/deployment.yaml', 'docker/kserve/cluster-serving-runtime.yaml',
    ]));
    for (const d of documents) expect(d.errors, `${d.file} document ${d.index}`).toEqual([]);
  });

  describe('Kubernetes (docker/k8s)', () => {
    const deployment = resource('Deployment', 'docker/k8s/deployment.yaml');
    const pod = get(deployment, 'spec', 'template') as Obj;
    const container = arr(get(pod, 'spec', 'containers'))[0]!;
    const configMap = resource('ConfigMap', 'docker/k8s/configmap.yaml');
    const configData = configMap.data as Record<string, string>;
    const env = containerEnv(container);
    const config: Config = loadConfig({ ...configData, ...literalEnv(env) });
    const port = (name: string) => arr(container.ports).find((p) => p.name === name);

    it('kustomization.yaml lists every manifest in docker/k8s', () => {
      const kustomization = resource('Kustomization', 'docker/k8s/kustomization.yaml');
      const listed = (kustomization.resources as string[]).map((r) => `docker/k8s/${r}`).sort();
      const present = [...new Set(resources.filter((r) => path.dirname(r.file) === 'docker/k8s' && r.value.kind !== 'Kustomization').map((r) => r.file))].sort();
      expect(listed).toEqual(present);
    });

    it('ConfigMap: every key is a server setting and every value is valid', () => {
      for (const key of Object.keys(configData)) expect(isSetting(key), key).toBe(true);
      const envFrom = arr(container.envFrom).map((e) => get(e, 'configMapRef', 'name'));
      expect(envFrom).toContain((configMap.metadata as Obj).name);
    });

    it('Deployment: environment variables are server settings', () => {
      for (const name of env.keys()) expect(isSetting(name), name).toBe(true);
      // TensorFlow's pool follows the CPU limit (the entrypoint would derive the same from the quota).
      expect(get(arr(container.env).find((e) => e.name === 'TF_INTRA_OP_THREADS'), 'valueFrom', 'resourceFieldRef', 'resource')).toBe('limits.cpu');
    });

    it('Deployment: container ports are the server ports, named http and grpc', () => {
      expect(port('http')?.containerPort).toBe(config.HTTP_PORT);
      expect(port('grpc')?.containerPort).toBe(config.GRPC_PORT);
      expect(config.HTTP_PORT).toBe(DEFAULTS.HTTP_PORT);
      expect(config.GRPC_PORT).toBe(DEFAULTS.GRPC_PORT);
    });

    it('Deployment: readiness probes readiness, startup and liveness probe liveness, on the http port', async () => {
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        expect(get(container, probe, 'httpGet', 'port'), probe).toBe('http');
      }
      await expectReadiness(get(container, 'readinessProbe', 'httpGet', 'path') as string);
      // Liveness stays 200 while draining: a draining pod must not be restarted.
      await expectLiveness(get(container, 'livenessProbe', 'httpGet', 'path') as string);
      await expectLiveness(get(container, 'startupProbe', 'httpGet', 'path') as string);
      const startup = container.startupProbe as Obj;
      expect((startup.periodSeconds as number) * (startup.failureThreshold as number)).toBeGreaterThanOrEqual(config.MODEL_LOAD_TIMEOUT_MS / 1000);
    });

    it('Deployment: the grace period covers the preStop sleep, the drain and stopping the workers', () => {
      const preStop = get(container, 'lifecycle', 'preStop', 'exec', 'command') as string[];
      expect(preStop[0]).toBe('sleep');
      const grace = get(pod, 'spec', 'terminationGracePeriodSeconds') as number;
      expect(grace).toBeGreaterThanOrEqual(Number(preStop[1]) + config.SHUTDOWN_TIMEOUT_MS / 1000 + WORKER_STOP_MARGIN_S);
    });

    it('Deployment: the model repository volume is mounted read-only at MODEL_REPOSITORY; /tmp is writable', () => {
      const mounts = arr(container.volumeMounts);
      const models = mounts.find((m) => m.mountPath === config.MODEL_REPOSITORY);
      expect(models?.readOnly).toBe(true);
      const volume = arr(get(pod, 'spec', 'volumes')).find((v) => v.name === models?.name);
      const claim = get(volume, 'persistentVolumeClaim', 'claimName');
      expect(get(resource('PersistentVolumeClaim', 'docker/k8s/model-repository.yaml'), 'metadata', 'name')).toBe(claim);
      expect(get(container, 'securityContext', 'readOnlyRootFilesystem')).toBe(true);
      const tmp = mounts.find((m) => m.mountPath === '/tmp');
      expect(get(arr(get(pod, 'spec', 'volumes')).find((v) => v.name === tmp?.name), 'emptyDir')).toBeDefined();
    });

    it('Deployment: runs as the image user, with CPU and memory requests and limits', () => {
      const user = onlyInstruction(finalStage(readDockerfile().parsed), 'USER').args.split(':').map(Number);
      expect(get(pod, 'spec', 'securityContext', 'runAsUser')).toBe(user[0]);
      expect(get(pod, 'spec', 'securityContext', 'runAsNonRoot')).toBe(true);
      for (const kind of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) expect(get(container, 'resources', kind, r), `${kind}.${r}`).toBeDefined();
      }
      const annotations = get(pod, 'metadata', 'annotations') as Record<string, string>;
      expect(Number(annotations['prometheus.io/port'])).toBe(config.HTTP_PORT);
      expect(annotations['prometheus.io/path']).toBe('/metrics');
    });

    it('Services: ports target the named container ports; gRPC is named grpc and speaks h2c; selectors pick the pods', () => {
      const services = resources.filter((r) => r.value.kind === 'Service');
      expect(services.length).toBe(2);
      const labels = get(pod, 'metadata', 'labels');
      for (const { value: service } of services) {
        expect(selectorMatches(get(service, 'spec', 'selector'), labels)).toBe(true);
        for (const p of arr(get(service, 'spec', 'ports'))) {
          expect(port(p.targetPort as string), `${String(p.name)} → ${String(p.targetPort)}`).toBeDefined();
          expect(p.port).toBe(port(p.targetPort as string)!.containerPort);
          if (p.targetPort === 'grpc') {
            expect(p.name).toBe('grpc');
            expect(p.appProtocol).toBe('kubernetes.io/h2c');
          }
        }
      }
      const main = resource('Service', 'docker/k8s/service.yaml', 'densenet-serve');
      expect(arr(get(main, 'spec', 'ports')).map((p) => p.targetPort).sort()).toEqual(['grpc', 'http']);
    });

    it('HorizontalPodAutoscalers target the Deployment, on CPU and metrics the server exports', async () => {
      const autoscalers = resources.filter((r) => r.value.kind === 'HorizontalPodAutoscaler');
      expect(autoscalers.map((a) => a.file).sort()).toEqual(['docker/k8s/extras/hpa-queue-depth.yaml', 'docker/k8s/hpa.yaml']);
      const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      for (const { value: hpa } of autoscalers) {
        expect(get(hpa, 'spec', 'scaleTargetRef', 'kind')).toBe('Deployment');
        expect(get(hpa, 'spec', 'scaleTargetRef', 'name')).toBe(get(deployment, 'metadata', 'name'));
        const specs = arr(get(hpa, 'spec', 'metrics'));
        expect(specs.some((m) => m.type === 'Resource' && get(m, 'resource', 'name') === 'cpu')).toBe(true);
        for (const m of specs.filter((s) => s.type === 'Pods')) {
          const name = get(m, 'pods', 'metric', 'name') as string;
          expect(metrics).toContain(`# TYPE ${name} gauge`);
        }
      }
      const adapter = fileDoc('docker/k8s/extras/prometheus-adapter-values.yaml');
      const query = get(adapter, 'rules', 'custom', 0, 'seriesQuery') as string;
      expect(query.startsWith('densenet_queue_depth{')).toBe(true);
    });

    it('PodDisruptionBudget selects the pods', () => {
      const pdb = resource('PodDisruptionBudget', 'docker/k8s/pdb.yaml');
      expect(selectorMatches(get(pdb, 'spec', 'selector', 'matchLabels'), get(pod, 'metadata', 'labels'))).toBe(true);
      expect(selectorMatches(get(deployment, 'spec', 'selector', 'matchLabels'), get(pod, 'metadata', 'labels'))).toBe(true);
    });
  });

  describe('Compose (docker/compose.yaml)', () => {
    const compose = fileDoc('docker/compose.yaml');
    const service = get(compose, 'services', 'densenet-serve') as Obj;
    const environment = service.environment as Record<string, string>;

    it('builds this repository\'s Dockerfile; its settings are valid server settings', () => {
      const context = path.resolve(DOCKER_DIR, get(service, 'build', 'context') as string);
      expect(existsSync(path.join(context, get(service, 'build', 'dockerfile') as string))).toBe(true);
      for (const key of Object.keys(environment)) expect(isSetting(key), key).toBe(true);
      loadConfig(environment);
    });

    it('publishes the server ports, mounts the model repository at MODEL_REPOSITORY, outlasts the drain', () => {
      const config = loadConfig(environment);
      const published = (service.ports as string[]).map((p) => Number(p.split(':').at(-1)));
      expect(published.sort()).toEqual([config.HTTP_PORT, config.GRPC_PORT].sort());
      const mount = arr(service.volumes).find((v) => v.target === config.MODEL_REPOSITORY);
      expect(mount?.read_only).toBe(true);
      expect(existsSync(path.resolve(DOCKER_DIR, mount!.source as string))).toBe(true);
      expect(seconds(service.stop_grace_period as string)).toBeGreaterThanOrEqual(config.SHUTDOWN_TIMEOUT_MS / 1000 + WORKER_STOP_MARGIN_S);
    });

    it('Prometheus scrapes the server\'s metrics route on its HTTP port', async () => {
      const prometheus = get(compose, 'services', 'prometheus') as Obj;
      const configMount = arr(prometheus.volumes).find((v) => v.target === '/etc/prometheus/prometheus.yml');
      expect(path.resolve(DOCKER_DIR, configMount!.source as string)).toBe(path.join(DOCKER_DIR, 'prometheus.yml'));
      const job = get(fileDoc('docker/prometheus.yml'), 'scrape_configs', 0) as Obj;
      expect(await answers(job.metrics_path as string, false)).toBe(200);
      expect(get(job, 'static_configs', 0, 'targets')).toEqual([`densenet-serve:${loadConfig(environment).HTTP_PORT}`]);
    });
  });

  describe('KServe (docker/kserve)', () => {
    const runtime = resource('ClusterServingRuntime', 'docker/kserve/cluster-serving-runtime.yaml');
    const container = arr(get(runtime, 'spec', 'containers'))[0]!;
    const env = containerEnv(container);
    const config = loadConfig(literalEnv(env));

    it('the runtime speaks the Open Inference Protocol on KServe\'s ports, with the repository at /mnt/models', async () => {
      expect(container.name).toBe('kserve-container');
      for (const name of env.keys()) expect(isSetting(name), name).toBe(true);
      expect(config.MODEL_REPOSITORY).toBe('/mnt/models');
      // KServe routes REST to 8080 unless told otherwise.
      expect(config.HTTP_PORT).toBe(8080);
      expect(get(runtime, 'spec', 'protocolVersions')).toEqual(['v2', 'grpc-v2']);
      const annotations = get(runtime, 'spec', 'annotations') as Record<string, string>;
      expect(Number(annotations['prometheus.kserve.io/port'])).toBe(config.HTTP_PORT);
      expect(await answers(annotations['prometheus.kserve.io/path']!, false)).toBe(200);
      expect(container.args).toBeUndefined(); // args would replace the image's CMD
    });

    it('the InferenceServices use the runtime and its model format; gRPC goes to the server\'s gRPC port as h2c', () => {
      const services = resources.filter((r) => r.value.kind === 'InferenceService');
      expect(services.length).toBe(2);
      const formats = arr(get(runtime, 'spec', 'supportedModelFormats')).map((f) => f.name);
      for (const { value: isvc } of services) {
        const model = get(isvc, 'spec', 'predictor', 'model') as Obj;
        expect(model.runtime).toBe(get(runtime, 'metadata', 'name'));
        expect(formats).toContain(get(model, 'modelFormat', 'name'));
        expect(['v2', 'grpc-v2']).toContain(model.protocolVersion);
        if (model.protocolVersion === 'grpc-v2') {
          expect(arr(model.ports)).toEqual([{ name: 'h2c', containerPort: config.GRPC_PORT, protocol: 'TCP' }]);
        }
      }
    });
  });
});
