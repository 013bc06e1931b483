// The server's name and version as /v2 and /openapi.json report them: package.json's.
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../../../package.json') as { name: string; version: string; description?: string };

export const SERVER_INFO = Object.freeze({ name: pkg.name, version: pkg.version, description: pkg.description ?? '' });

/** Open Inference Protocol extensions this server speaks (GET /v2). */
export const EXTENSIONS = Object.freeze(['binary_tensor_data', 'classification', 'model_repository', 'model_configuration', 'schedule_policy', 'parameters']);
