// The model repository: a directory with one folder per model, each holding manifest.json and
// either its weights directly (version 1) or numbered version folders (1/, 2/, …). Files are
// only ever read from inside the repository root: names are validated and every resolved path
// (symlinks followed) must stay under the root.
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { ServeError, invalidInput } from '../../errors.ts';
import { IMAGENET_CLASSES, type DenseNetConfig } from '../../densenet/index.ts';
import { CHECKPOINT_FORMATS, IMAGENET_LABELS, MANIFEST_FILE, manifestArchitecture, parseManifest, type Manifest } from './manifest.ts';

/** Model names: what a URL path segment and a folder name can both hold safely. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VERSION = /^[1-9][0-9]{0,8}$/;
const MAX_MANIFEST_BYTES = 1024 * 1024;
const MAX_LABELS_BYTES = 16 * 1024 * 1024;

export interface ModelVersionFiles {
  version: string;
  /** The checkpoint file (safetensors, .pth, .keras/.h5), or the folder holding model.json for tfjs-layers. */
  weightsPath: string;
}

export interface ModelDescriptor {
  name: string;
  manifest: Manifest;
  architecture?: DenseNetConfig;
  labels: string[];
  versions: ModelVersionFiles[];
}

export interface RepositoryEntry {
  name: string;
  /** Set when the folder could not be read as a model: it is reported and skipped. */
  error?: string;
}

export function assertModelName(name: string, field = 'model'): void {
  if (!MODEL_NAME.test(name) || name.includes('..')) {
    throw invalidInput(field, `'${name.slice(0, 140)}' is not a valid model name (letters, digits, '_', '-', '.'; at most 128)`);
  }
}

export function assertVersion(version: string, field = 'version'): void {
  if (!VERSION.test(version)) throw invalidInput(field, `'${version.slice(0, 20)}' is not a version number`);
}

export class ModelRepository {
  private rootReal?: string;

  constructor(readonly root: string) {}

  /** Every folder in the repository, with the reason it is unusable where it is. */
  async index(): Promise<RepositoryEntry[]> {
    const root = await this.realRoot();
    const entries = await readdir(root, { withFileTypes: true });
    const names = entries.filter((e) => e.isDirectory() || e.isSymbolicLink()).map((e) => e.name).filter((n) => !n.startsWith('.')).sort();
    return Promise.all(names.map(async (name) => {
      try {
        await this.describe(name);
        return { name };
      } catch (err) {
        return { name, error: (err as Error).message };
      }
    }));
  }

  /** Reads and validates one model folder. */
  async describe(name: string): Promise<ModelDescriptor> {
    assertModelName(name);
    const dir = await this.inside(name, `model '${name}'`);
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
      throw new ServeError('MODEL_NOT_FOUND', `no model '${name}' in the repository`, { model: name });
    }
    const manifestPath = await this.inside(path.join(name, MANIFEST_FILE), `${name}/${MANIFEST_FILE}`);
    const manifest = parseManifest(await readSmall(manifestPath, MAX_MANIFEST_BYTES, `${name}/${MANIFEST_FILE}`), `${name}/${MANIFEST_FILE}`);
    const architecture = manifestArchitecture(manifest);
    const labels = await this.readLabels(name, manifest, architecture);
    if (architecture && architecture.numClasses !== labels.length) {
      throw new ServeError('INVALID_MODEL_FILE', `${name}: ${labels.length} labels for ${architecture.numClasses} classes`, { field: 'labels' });
    }
    const versions = await this.versions(name, manifest);
    return { name, manifest, architecture, labels, versions };
  }

  private async readLabels(name: string, manifest: Manifest, architecture: DenseNetConfig | undefined): Promise<string[]> {
    // No labels: each class is called by its index ("0", "1", …); the manifest guarantees an architecture.
    if (manifest.labels === undefined) return Array.from({ length: architecture?.numClasses ?? 0 }, (_, i) => String(i));
    if (Array.isArray(manifest.labels)) return manifest.labels;
    if (manifest.labels === IMAGENET_LABELS) return [...IMAGENET_CLASSES];
    const file = await this.inside(path.join(name, manifest.labels), `${name}/${manifest.labels}`);
    const text = await readSmall(file, MAX_LABELS_BYTES, `${name}/${manifest.labels}`);
    const labels = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
    if (labels.length === 0) throw new ServeError('INVALID_MODEL_FILE', `${name}/${manifest.labels} holds no labels`, { field: 'labels' });
    return labels;
  }

  private async versions(name: string, manifest: Manifest): Promise<ModelVersionFiles[]> {
    const checkpoint = manifest.format === 'tfjs-layers' ? undefined : CHECKPOINT_FORMATS[manifest.format];
    const weights = manifest.weights ?? checkpoint ?? '.';
    const entries = await readdir(await this.inside(name, name), { withFileTypes: true });
    const numbered = entries.filter((e) => VERSION.test(e.name)).map((e) => e.name).sort((a, b) => Number(a) - Number(b));
    const folders = numbered.length > 0 ? numbered : [''];
    const chosen = manifest.versionPolicy === 'all' ? folders : folders.slice(-manifest.versionPolicy.latest);
    return Promise.all(chosen.map(async (folder) => {
      const relative = path.join(name, folder, weights);
      const weightsPath = await this.inside(relative, relative);
      const info = await stat(weightsPath).catch(() => undefined);
      const expectFile = checkpoint !== undefined;
      if (!info || (expectFile ? !info.isFile() : !info.isDirectory())) {
        throw new ServeError('INVALID_MODEL_FILE', `${relative} is missing (${expectFile ? `a ${manifest.format} file` : 'a tfjs model folder'} expected)`, { field: 'weights' });
      }
      return { version: folder || '1', weightsPath };
    }));
  }

  private async realRoot(): Promise<string> {
    this.rootReal ??= await realpath(this.root).catch(() => {
      throw new ServeError('INVALID_CONFIG', `model repository ${this.root} does not exist`);
    });
    return this.rootReal;
  }

  /** Resolves a repository-relative path, following symlinks, and refuses anything outside. */
  private async inside(relative: string, what: string): Promise<string> {
    const root = await this.realRoot();
    const joined = path.resolve(root, relative);
    const real = await realpath(joined).catch(() => joined);
    if (real !== root && !real.startsWith(root + path.sep)) {
      throw new ServeError('INVALID_MODEL_FILE', `${what} resolves outside the model repository`, { field: 'path' });
    }
    return real;
  }
}

async function readSmall(file: string, limit: number, what: string): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new ServeError('INVALID_MODEL_FILE', `${what} is missing`);
  if (info.size > limit) throw new ServeError('INVALID_MODEL_FILE', `${what} is larger than ${limit} bytes`);
  return readFile(file, 'utf8');
}
