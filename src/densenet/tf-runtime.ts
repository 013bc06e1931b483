// The one file that imports TensorFlow.js and chooses its backend. Everything else imports
// `tf` from here, so swapping or pinning the engine is a change to this file alone.
//
// The tfjs executors (`fused`, `layers`) serve on native TensorFlow (@tensorflow/tfjs-node): 100×
// faster than the pure-JS kernels and 2-5× faster than WASM here; those two exist for development
// on machines where the native library cannot be installed, behind an explicit opt-in. The default
// executor, onnxruntime, serves on ONNX Runtime: its workers start on the pure-JS backend only to
// build each network for the export, and load native TensorFlow only for a model that only tfjs
// can run (the engine plan, src/inference/engine-plan.ts, decides which backend a worker starts on).
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs';
import { ServeError } from '../errors.ts';

const require = createRequire(import.meta.url);

// Loaded through require so that this module and tfjs-node share the one CommonJS instance of
// tfjs-core that the native backend registers itself into.
export const tf: typeof TF = require('@tensorflow/tfjs');

export type { Tensor, Tensor1D, Tensor2D, Tensor4D, Rank, LayersModel, SymbolicTensor } from '@tensorflow/tfjs';

export type EngineBackend = 'tensorflow' | 'wasm' | 'cpu';

/** How to start the engine in this process or worker; the caller (the engine plan) decides every value. */
export interface EngineOptions {
  backend: EngineBackend;
  /** TF intra-op pool size (threads one op may use); 0 lets TensorFlow use every core. */
  intraOpThreads: number;
  /** TF inter-op pool size (independent ops run at once); 0 lets TensorFlow decide. */
  interOpThreads: number;
  /**
   * TensorFlow's oneDNN kernels: on only where the engine plan says so (TF_ENABLE_ONEDNN, or the
   * probe in onednn-probe.ts under 'auto'). With TF 2.21 on one AVX-512 CPU a 1×1 conv from 1024
   * to 512 channels (DenseNet-121's third transition) died with SIGFPE inside oneDNN.
   */
  oneDnn: boolean;
}

export interface EngineInfo {
  backend: EngineBackend;
  tfjsVersion: string;
  /** Version of the TensorFlow C library behind the native backend, when it is loaded. */
  tensorflowVersion: string | undefined;
}

let loaded: EngineInfo | undefined;

/**
 * Loads the chosen backend and makes it current. Idempotent for the same backend; a process
 * (or worker thread) runs one backend for its whole life.
 */
export async function initEngine(options: EngineOptions): Promise<EngineInfo> {
  if (loaded) {
    if (loaded.backend !== options.backend) {
      throw new ServeError('ENGINE_UNAVAILABLE',
        `engine already initialised with backend '${loaded.backend}', cannot switch to '${options.backend}'`);
    }
    return loaded;
  }
  if (options.backend === 'tensorflow') {
    loaded = await loadNative(options);
  } else {
    if (options.backend === 'wasm') require('@tensorflow/tfjs-backend-wasm');
    await setBackend(options.backend);
    loaded = { backend: options.backend, tfjsVersion: tf.version.tfjs, tensorflowVersion: undefined };
  }
  return loaded;
}

/**
 * Moves a process (or worker thread) that started on the pure-JS backend to native TensorFlow.
 * An onnxruntime worker starts on 'cpu' because it only builds networks to export them, and
 * switches when it meets a model that only tfjs can run. Tensors made before stay on 'cpu'.
 */
export async function upgradeToNative(options: EngineOptions): Promise<EngineInfo> {
  if (loaded?.backend !== 'tensorflow') loaded = await loadNative(options);
  return loaded;
}

/**
 * TensorFlow reads its thread-pool sizes and kernel choices from the process environment once,
 * when the library first initialises, and its thread pools are shared by the whole process.
 * Must run on the main thread before any worker loads the engine: a worker thread's
 * process.env is a private copy that native code never sees. TF_CPP_MIN_LOG_LEVEL=2 keeps the
 * C++ info lines (oneDNN notices, CPU banners) out of our structured logs.
 */
export function applyEngineEnvironment(options: Pick<EngineOptions, 'intraOpThreads' | 'interOpThreads' | 'oneDnn'>): void {
  process.env.TF_NUM_INTRAOP_THREADS = String(options.intraOpThreads);
  process.env.TF_NUM_INTEROP_THREADS = String(options.interOpThreads);
  process.env.TF_ENABLE_ONEDNN_OPTS = options.oneDnn ? '1' : '0';
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
}

async function loadNative(options: EngineOptions): Promise<EngineInfo> {
  applyEngineEnvironment(options);
  let native: { version: Record<string, string> };
  try {
    native = require('@tensorflow/tfjs-node');
  } catch (err) {
    throw new ServeError(
      'ENGINE_UNAVAILABLE',
      'native TensorFlow (@tensorflow/tfjs-node) could not be loaded: ' +
        `${(err as Error).message.split('\n')[0]}. Run \`npm ci\` (it provisions libtensorflow; ` +
        'see tools/tfjs-native/provision.cjs for DENSENET_TF_WHEEL / DENSENET_TF_LIB_DIR), ' +
        'or set ENGINE_BACKEND=wasm|cpu with ALLOW_DEV_BACKEND=true for development only.',
      {},
      { cause: err },
    );
  }
  await setBackend('tensorflow');
  return {
    backend: 'tensorflow',
    tfjsVersion: tf.version.tfjs,
    tensorflowVersion: native.version['tfjs-node'] ? tfNativeVersion() : undefined,
  };
}

async function setBackend(name: EngineBackend): Promise<void> {
  // tfjs prints a banner urging tfjs-node on the first tensor of the pure-JS backend in Node; we
  // chose that backend on purpose (to build networks for export, or for development, which logs
  // its own warning), and the banner would land unstructured on stdout. PROD mode only skips
  // debug checks that are off anyway.
  if (name === 'cpu') tf.env().set('PROD', true);
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) {
    throw new ServeError('ENGINE_UNAVAILABLE', `TensorFlow.js backend '${name}' failed to initialise`);
  }
}

function tfNativeVersion(): string | undefined {
  const backend = tf.backend() as unknown as { binding?: { TF_Version?: string } };
  return backend.binding?.TF_Version;
}

/** The engine loaded in this thread, or undefined before initEngine. */
export function engineInfo(): EngineInfo | undefined {
  return loaded;
}
