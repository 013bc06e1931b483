// Reading the zip archives model files come in (torch.save's zip format, Keras 3's .keras),
// bounded: yauzl checks every entry's actual size against the size the archive declares
// (validateEntrySizes), so a declared size can be trusted; here, declared sizes are checked
// against our limits before a byte is inflated, and only the entries a reader asks for are.
import yauzl from 'yauzl';
import { ServeError } from '../errors.ts';

export interface ZipLimits {
  /** Entries in the central directory. */
  maxEntries: number;
  /** Uncompressed bytes of one entry. */
  maxEntryBytes: number;
  /** Uncompressed bytes of every entry read, together. */
  maxTotalBytes: number;
}

/** DenseNet-264 in F32 is 133 MB in ~1,300 tensors: these leave room and stop a zip bomb. */
export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = Object.freeze({
  maxEntries: 65_536,
  maxEntryBytes: 1024 * 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024 - 1,
});

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** Whether the bytes start like a zip archive (a local file header). */
export function looksLikeZip(head: Uint8Array): boolean {
  return ZIP_MAGIC.every((b, i) => head[i] === b);
}

export class ZipArchive {
  private totalRead = 0;

  private constructor(
    private readonly zip: yauzl.ZipFile,
    private readonly entries: ReadonlyMap<string, yauzl.Entry>,
    private readonly limits: ZipLimits,
    private readonly what: string,
  ) {}

  /** Reads the central directory (no entry data yet). */
  static async open(buffer: Buffer, what: string, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Promise<ZipArchive> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.fromBufferPromise(buffer, { lazyEntries: true, validateEntrySizes: true, decodeStrings: true });
    } catch (err) {
      throw zipError(what, err);
    }
    if (zip.entryCount > limits.maxEntries) {
      zip.close();
      throw new ServeError('INVALID_MODEL_FILE', `${what}: the zip archive has ${zip.entryCount} entries, over the limit of ${limits.maxEntries}`);
    }
    const entries = new Map<string, yauzl.Entry>();
    try {
      for await (const entry of zip.eachEntry()) {
        // Two entries of one name would let two readers disagree on which one a file means.
        if (entries.has(entry.fileName)) {
          throw new ServeError('INVALID_MODEL_FILE', `${what}: the zip archive holds '${entry.fileName}' twice`);
        }
        entries.set(entry.fileName, entry);
      }
    } catch (err) {
      zip.close();
      throw err instanceof ServeError ? err : zipError(what, err);
    }
    return new ZipArchive(zip, entries, limits, what);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The declared (and, once read, verified) uncompressed size. */
  size(name: string): number {
    return this.entry(name).uncompressedSize;
  }

  /** One entry's bytes; its declared size is checked against the limits before inflating. */
  async read(name: string): Promise<Buffer> {
    const entry = this.entry(name);
    const declared = entry.uncompressedSize;
    if (declared > this.limits.maxEntryBytes) {
      throw new ServeError('INVALID_MODEL_FILE',
        `${this.what}: zip entry '${name}' declares ${declared} bytes uncompressed, over the limit of ${this.limits.maxEntryBytes}`,
        { entry: name, declaredBytes: declared });
    }
    if (this.totalRead + declared > this.limits.maxTotalBytes) {
      throw new ServeError('INVALID_MODEL_FILE',
        `${this.what}: the zip entries read would hold ${this.totalRead + declared} bytes uncompressed, over the limit of ${this.limits.maxTotalBytes}`,
        { entry: name });
    }
    if (entry.isEncrypted()) throw new ServeError('INVALID_MODEL_FILE', `${this.what}: zip entry '${name}' is encrypted`, { entry: name });
    this.totalRead += declared;
    try {
      const stream = await this.zip.openReadStreamPromise(entry);
      const out = Buffer.allocUnsafe(declared);
      let at = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        // yauzl errors the stream once it passes the declared size; never write past it meanwhile.
        if (at + chunk.length > declared) {
          stream.destroy();
          throw new Error(`too many bytes in the stream: more than the ${declared} declared`);
        }
        chunk.copy(out, at);
        at += chunk.length;
      }
      if (at !== declared) throw new Error(`not enough bytes in the stream: ${at} of the ${declared} declared`);
      return out;
    } catch (err) {
      throw new ServeError('INVALID_MODEL_FILE',
        `${this.what}: zip entry '${name}' is corrupt or not the size it declares: ${(err as Error).message}`, { entry: name }, { cause: err });
    }
  }

  close(): void {
    this.zip.close();
  }

  private entry(name: string): yauzl.Entry {
    const entry = this.entries.get(name);
    if (!entry) throw new ServeError('INVALID_MODEL_FILE', `${this.what}: the zip archive has no entry '${name}'`, { entry: name });
    return entry;
  }
}

function zipError(what: string, err: unknown): ServeError {
  const message = (err as Error).message ?? String(err);
  const hint = /end of central directory|signature not found|unexpected EOF|truncated|invalid .* offset/i.test(message)
    ? ' (the file may be truncated)' : '';
  return new ServeError('INVALID_MODEL_FILE', `${what}: not a readable zip archive: ${message}${hint}`, {}, { cause: err });
}
