// Triton's model repository extension, the same on both transports: the index (every model
// folder, with the state of each loaded version; a folder not loaded is UNAVAILABLE with the
// reason), load (or reload, without dropping requests) and unload.
import { invalidInput } from '../../errors.ts';
import type { InferenceService } from '../../inference/index.ts';

export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  state: string;
  reason?: string;
}

export async function repositoryIndex(service: InferenceService, readyOnly: boolean): Promise<RepositoryIndexEntry[]> {
  const loaded = service.listModels();
  const folders = await service.repositoryIndex();
  const names = [...new Set([...folders.map((e) => e.name), ...loaded.map((m) => m.name)])].sort();
  const index = names.flatMap((name): RepositoryIndexEntry[] => {
    const versions = loaded.filter((m) => m.name === name);
    if (versions.length > 0) return versions.map((v) => ({ name, version: v.version, state: v.state, ...(v.reason ? { reason: v.reason } : {}) }));
    const folder = folders.find((e) => e.name === name);
    return [{ name, state: 'UNAVAILABLE', reason: folder?.error ?? 'unloaded' }];
  });
  return readyOnly ? index.filter((e) => e.state === 'READY') : index;
}

/** Load parameters (configuration or file overrides) are not supported: they must be absent. */
export async function loadModel(service: InferenceService, name: string, parameters: Readonly<Record<string, unknown>> = {}): Promise<void> {
  if (Object.keys(parameters).length > 0) throw invalidInput('parameters', 'load parameters (config or file overrides) are not supported');
  await service.load(name);
}

export async function unloadModel(service: InferenceService, name: string): Promise<void> {
  await service.unload(name);
}
