// `npm run import -- <weights file> --preset densenet121 --name my-model [--labels imagenet|FILE]
// [--repository models] [--num-classes N] [--input-size N] [--format pytorch|keras|safetensors]
// [--architecture config.json] [--force]`: a DenseNet checkpoint becomes a model folder the
// server serves (model-import.ts). Compiled, it is `node dist/import-cli.js …`.
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from './config.ts';
import { PRESET_NAMES, WEIGHTS_FORMATS, isPresetName, type WeightsFormat } from './densenet/index.ts';
import { importModel, type ImportOptions } from './inference/repository/model-import.ts';

const USAGE = `usage: npm run import -- <weights file> --preset <preset> --name <model name>
         [--labels imagenet|<labels file>] [--repository <dir>] [--num-classes N] [--input-size N]
         [--format pytorch|keras|safetensors] [--architecture <config.json>] [--force]

  <weights file>  a torch.save checkpoint (.pth/.pt, zip or legacy format), a Keras .keras or .h5
                  file of a keras.applications DenseNet, or torchvision-named safetensors
  --preset        ${PRESET_NAMES.join(', ')}
  --labels        'imagenet' for the 1,000 ImageNet classes, or a file with one label per line;
                  without it, answers label each class by its index
  --repository    the model repository (default: MODEL_REPOSITORY, 'models')
  --architecture  instead of --preset, a DenseNet config as JSON (src/densenet/config.ts)
`;

class UsageError extends Error {}

export function parseImportArgs(argv: readonly string[], defaults: { repository: string }): ImportOptions {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) {
      positional.push(arg);
      continue;
    }
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    if (name === 'force' || name === 'help') flags.set(name, true);
    else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, value);
    }
  }
  if (flags.has('help')) throw new UsageError('');
  const known = new Set(['preset', 'architecture', 'name', 'labels', 'repository', 'num-classes', 'input-size', 'format', 'force']);
  for (const name of flags.keys()) if (!known.has(name)) throw new UsageError(`unknown option --${name}`);
  if (positional.length !== 1) throw new UsageError(positional.length ? `one weights file, not ${positional.length}` : 'the weights file is missing');
  const text = (name: string) => {
    const v = flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const preset = text('preset');
  const architectureFile = text('architecture');
  const name = text('name');
  if ((preset === undefined) === (architectureFile === undefined)) throw new UsageError('give --preset or --architecture');
  if (preset !== undefined && !isPresetName(preset)) throw new UsageError(`--preset must be one of ${PRESET_NAMES.join(', ')}`);
  let architecture: ImportOptions['architecture'];
  if (architectureFile !== undefined) {
    try {
      architecture = JSON.parse(readFileSync(architectureFile, 'utf8')) as ImportOptions['architecture'];
    } catch (err) {
      throw new UsageError(`--architecture ${architectureFile}: ${(err as Error).message}`);
    }
  }
  if (!name) throw new UsageError('--name is missing');
  const int = (flag: string) => {
    const v = text(flag);
    if (v === undefined) return undefined;
    if (!/^[1-9]\d{0,5}$/.test(v)) throw new UsageError(`--${flag} must be a positive integer`);
    return Number(v);
  };
  const format = text('format');
  if (format !== undefined && !WEIGHTS_FORMATS.includes(format as WeightsFormat)) throw new UsageError(`--format must be one of ${WEIGHTS_FORMATS.join(', ')}`);
  return {
    source: positional[0] as string,
    preset: preset as ImportOptions['preset'],
    architecture,
    name,
    repository: text('repository') ?? defaults.repository,
    labels: text('labels'),
    numClasses: int('num-classes'),
    inputSize: int('input-size'),
    format: format as WeightsFormat | undefined,
    force: flags.get('force') === true,
  };
}

async function main(): Promise<void> {
  const config = loadConfig(process.env, []);
  let options: ImportOptions;
  try {
    options = parseImportArgs(process.argv.slice(2), { repository: config.MODEL_REPOSITORY });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message ? `import: ${err.message}\n\n` : ''}${USAGE}`);
    process.exit(2);
  }
  const started = performance.now();
  try {
    const result = await importModel(options);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const base = `http://localhost:${config.HTTP_PORT}`;
    process.stdout.write(
      `imported ${options.source} (${result.source}) as ${result.folder}\n` +
      `  ${result.tensors} tensors, ${result.parameters.toLocaleString('en-US')} parameters checked against ${options.preset ?? 'the architecture'}; sha256 ${result.sha256}; ${seconds} s\n\n` +
      'Serve it (npm start loads every model in the repository; a running server loads it with the second line):\n' +
      `  curl -T photo.jpg '${base}/v1/models/${options.name}/classify?top_k=5'\n` +
      `  curl -X POST ${base}/v2/repository/models/${options.name}/load\n`,
    );
  } catch (err) {
    process.stderr.write(`import failed: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

function isEntryPoint(): boolean {
  const started = process.argv[1];
  if (started === undefined) return false;
  try {
    return realpathSync(fileURLToPath(import.meta.url)) === realpathSync(started);
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
