// TLS material for both frontends, read and checked once at start-up from the files the config
// names (TLS_CERT_FILE, TLS_KEY_FILE, and TLS_CA_FILE for mutual TLS). A missing, unreadable or
// malformed file is an INVALID_CONFIG error naming the setting, before anything starts.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config.ts';
import { ServeError } from '../errors.ts';

export interface TlsMaterial {
  /** PEM certificate chain, the server's own certificate first. */
  readonly cert: Buffer;
  readonly key: Buffer;
  /** PEM CA bundle that client certificates must chain to; set = mutual TLS, required. */
  readonly ca?: Buffer;
  /** The server certificate's expiry, for the start-up log line. */
  readonly validTo: string;
}

type TlsSettings = Pick<Config, 'TLS_CERT_FILE' | 'TLS_KEY_FILE' | 'TLS_CA_FILE'>;
type TlsSetting = keyof TlsSettings;

const invalid = (field: TlsSetting | string, message: string): ServeError =>
  new ServeError('INVALID_CONFIG', `${field}: ${message}`, { fields: field.split(' / ') });

async function readPem(field: TlsSetting, file: string): Promise<Buffer> {
  const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw invalid(field, `cannot read '${file}' (${err.code ?? err.message})`);
  });
  if (!data.includes('-----BEGIN ')) throw invalid(field, `'${file}' is not a PEM file`);
  return data;
}

/** The TLS material the config names, checked; undefined when TLS is off. */
export async function loadTlsMaterial(config: TlsSettings): Promise<TlsMaterial | undefined> {
  const { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, TLS_CA_FILE: caFile } = config;
  // config.ts already refuses one of the pair without the other.
  if (certFile === undefined || keyFile === undefined) return undefined;
  const cert = await readPem('TLS_CERT_FILE', certFile);
  const key = await readPem('TLS_KEY_FILE', keyFile);
  const ca = caFile === undefined ? undefined : await readPem('TLS_CA_FILE', caFile);

  let validTo: string;
  try {
    validTo = new X509Certificate(cert).validTo;
  } catch (err) {
    throw invalid('TLS_CERT_FILE', `'${certFile}' holds no valid certificate (${(err as Error).message})`);
  }
  try {
    createPrivateKey(key);
  } catch (err) {
    // The message of a failed key parse never contains the key itself.
    throw invalid('TLS_KEY_FILE', `'${keyFile}' holds no valid private key (${(err as Error).message})`);
  }
  if (ca) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw invalid('TLS_CA_FILE', `'${caFile}' holds no valid CA certificate (${(err as Error).message})`);
    }
  }
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    throw invalid('TLS_CERT_FILE / TLS_KEY_FILE', `the certificate and key do not belong together (${(err as Error).message})`);
  }
  return { cert, key, ...(ca ? { ca } : {}), validTo };
}
