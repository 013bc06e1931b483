// TLS on both transports, started the way main.ts starts the service, with certificates made by
// openssl for this run: HTTPS and gRPC over TLS for clients that trust the CA; with TLS_CA_FILE,
// mutual TLS that refuses clients without a certificate or with one from another CA.
import { rm } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerReadyResponse__Output } from '../../src/api/grpc/generated/inference/ServerReadyResponse.ts';
import type { ListModelsResponse__Output } from '../../src/api/grpc/generated/densenet/v1/ListModelsResponse.ts';
import { loadConfig } from '../../src/config.ts';
import { ServeError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import { startServer } from '../../src/main.ts';
import { makeCertificates, type TestCertificates } from './certs.ts';
import { call, failure, grpcClients, httpsRequest, makeRepository, startRealServer, type GrpcClients, type RealServer } from './real-server.ts';

let certs: TestCertificates;
let repo: string;
let tlsServer: RealServer;
let mutualServer: RealServer;
const clients: GrpcClients[] = [];

beforeAll(async () => {
  certs = await makeCertificates();
  repo = await makeRepository();
  const files = { TLS_CERT_FILE: certs.server.certFile, TLS_KEY_FILE: certs.server.keyFile };
  tlsServer = await startRealServer(files, { repo, logLevel: 'info' });
  mutualServer = await startRealServer({ ...files, TLS_CA_FILE: certs.ca.certFile }, { repo, logLevel: 'info' });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await tlsServer?.close();
  await mutualServer?.close();
  await rm(repo, { recursive: true, force: true });
  await certs?.remove();
});

function clientsFor(server: RealServer, credentials: grpc.ChannelCredentials): GrpcClients {
  const c = grpcClients(`127.0.0.1:${server.server.grpcPort}`, credentials);
  clients.push(c);
  return c;
}

const ready = (c: GrpcClients) => call<ServerReadyResponse__Output>(c.inference, 'ServerReady', {});

describe('TLS (TLS_CERT_FILE, TLS_KEY_FILE)', () => {
  it('says so when ready', () => {
    const line = tlsServer.logs.map((l) => JSON.parse(l) as { msg: string; tls?: string; certificateValidTo?: string }).find((l) => l.msg === 'densenet-serve ready');
    expect(line?.tls).toBe('server');
    expect(line?.certificateValidTo).toMatch(/GMT$/);
  });

  it('serves HTTPS to clients that trust the CA, by IP and by name; plain HTTP on that port gets nothing', async () => {
    const port = tlsServer.server.httpPort;
    expect(await httpsRequest(`https://127.0.0.1:${port}/v2/health/ready`, { ca: certs.ca.cert })).toEqual({ status: 200, body: '{"ready":true}' });
    expect((await httpsRequest(`https://localhost:${port}/v2/models/tiny`, { ca: certs.ca.cert })).status).toBe(200);
    // A client that does not trust the CA refuses the server…
    await expect(httpsRequest(`https://127.0.0.1:${port}/v2/health/ready`, {})).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    // …and a plaintext request is not answered.
    await expect(fetch(`http://127.0.0.1:${port}/v2/health/ready`)).rejects.toThrow();
  });

  it('serves gRPC over TLS; a plaintext client is refused', async () => {
    const secure = clientsFor(tlsServer, grpc.credentials.createSsl(certs.ca.cert));
    expect(await ready(secure)).toEqual({ ready: true });
    const listed = await call<ListModelsResponse__Output>(secure.classifier, 'ListModels', {});
    expect(listed.models.map((m) => m.name)).toEqual(['tiny']);
    const plain = clientsFor(tlsServer, grpc.credentials.createInsecure());
    expect((await failure(ready(plain))).code).toBe(grpc.status.UNAVAILABLE);
    const untrusting = clientsFor(tlsServer, grpc.credentials.createSsl());
    expect((await failure(ready(untrusting))).code).toBe(grpc.status.UNAVAILABLE);
  });
});

/** A closed connection reads as 'socket hang up' or 'read ECONNRESET' (request bytes unread): both ECONNRESET. */
interface HandshakeOutcome { secureConnect: boolean; serverAuthorized: boolean; status?: number; errorCode?: string }

/** One HTTPS request on a connection of its own, with what the client saw of the TLS handshake. */
function refusedAfterHandshake(url: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    const outcome: HandshakeOutcome = { secureConnect: false, serverAuthorized: false };
    const req = https.request(url, { ...tls, agent: false, timeout: 10_000 }, (res) => {
      outcome.status = res.statusCode;
      res.resume();
      res.on('end', () => resolve(outcome));
    });
    req.on('socket', (socket) => (socket as TLSSocket).once('secureConnect', () => {
      outcome.secureConnect = true;
      outcome.serverAuthorized = (socket as TLSSocket).authorized;
    }));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      outcome.errorCode = err.code ?? err.message;
      resolve(outcome);
    });
    req.end();
  });
}

describe('mutual TLS (TLS_CA_FILE)', () => {
  const url = () => `https://127.0.0.1:${mutualServer.server.httpPort}/v2/health/ready`;

  it('HTTPS: a client with a certificate from the CA is served; none, or one from another CA, is refused', async () => {
    expect((await httpsRequest(url(), { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key })).status).toBe(200);
    await expect(httpsRequest(url(), { ca: certs.ca.cert })).rejects.toThrow(/certificate required/);
    // A certificate from another CA: Node's TLS server sends no alert for it (it verifies the
    // chain once the handshake is done and then destroys the socket; openssl s_client sees an
    // unexpected EOF), so what shows the server refused it is this sequence: the client finished
    // its side of the handshake, having verified the server, and the connection was then closed
    // with no HTTP answer. Any other failure (the client distrusting the server, a refused
    // connection, an answer) is a different outcome.
    expect(await refusedAfterHandshake(url(), { ca: certs.ca.cert, cert: certs.untrustedClient.cert, key: certs.untrustedClient.key }))
      .toEqual({ secureConnect: true, serverAuthorized: true, errorCode: 'ECONNRESET' });
    // The refusals cost the server nothing: the next trusted client is served.
    expect((await httpsRequest(url(), { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key })).status).toBe(200);
  });

  it('gRPC: a client with a certificate from the CA is served; none, or one from another CA, is refused', async () => {
    const trusted = clientsFor(mutualServer, grpc.credentials.createSsl(certs.ca.cert, certs.client.key, certs.client.cert));
    expect(await ready(trusted)).toEqual({ ready: true });
    const anonymous = clientsFor(mutualServer, grpc.credentials.createSsl(certs.ca.cert));
    const refused = await failure(ready(anonymous));
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused.details).toMatch(/certificate required/);
    const stranger = clientsFor(mutualServer, grpc.credentials.createSsl(certs.ca.cert, certs.untrustedClient.key, certs.untrustedClient.cert));
    expect((await failure(ready(stranger))).code).toBe(grpc.status.UNAVAILABLE);
    // The trusted client still works after the refusals.
    expect(await ready(trusted)).toEqual({ ready: true });
  });
});

describe('bad TLS files', () => {
  async function startError(env: Record<string, string>): Promise<ServeError> {
    const config = loadConfig({ MODEL_REPOSITORY: repo, HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', WORKERS: '1', ...env });
    const err = await startServer(config, silentLogger).then(
      async (s) => {
        await s.shutdown('unexpected start');
        throw new Error('expected start-up to fail');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServeError);
    expect((err as ServeError).code).toBe('INVALID_CONFIG');
    return err as ServeError;
  }

  it('fail start-up with a message naming the setting and the file', async () => {
    const { certFile, keyFile } = certs.server;
    expect((await startError({ TLS_CERT_FILE: `${certs.dir}/absent.crt`, TLS_KEY_FILE: keyFile })).message)
      .toBe(`TLS_CERT_FILE: cannot read '${certs.dir}/absent.crt' (ENOENT)`);
    expect((await startError({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: certs.dir })).message)
      .toBe(`TLS_KEY_FILE: cannot read '${certs.dir}' (EISDIR)`);
    expect((await startError({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, TLS_CA_FILE: `${certs.dir}/server.ext` })).message)
      .toBe(`TLS_CA_FILE: '${certs.dir}/server.ext' is not a PEM file`);
    expect((await startError({ TLS_CERT_FILE: keyFile, TLS_KEY_FILE: keyFile })).message)
      .toMatch(/^TLS_CERT_FILE: '.*server\.key' holds no valid certificate/);
    expect((await startError({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: certFile })).message)
      .toMatch(/^TLS_KEY_FILE: '.*server\.crt' holds no valid private key/);
    const mismatch = await startError({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: certs.client.keyFile });
    expect(mismatch.message).toMatch(/^TLS_CERT_FILE \/ TLS_KEY_FILE: the certificate and key do not belong together/);
    expect(mismatch.details.fields).toEqual(['TLS_CERT_FILE', 'TLS_KEY_FILE']);
    // The key never appears in an error message.
    expect(mismatch.message).not.toContain('PRIVATE KEY');
  });

  it('are refused by the config when only half of the pair is set', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: 'a.crt' })).toThrow(/TLS_KEY_FILE: TLS needs both TLS_CERT_FILE and TLS_KEY_FILE/);
    expect(() => loadConfig({ TLS_KEY_FILE: 'a.key' })).toThrow(/TLS_CERT_FILE: TLS needs both/);
    expect(() => loadConfig({ TLS_CA_FILE: 'ca.crt' })).toThrow(/TLS_CA_FILE: mutual TLS needs TLS_CERT_FILE and TLS_KEY_FILE too/);
  });
});
