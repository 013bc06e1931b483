// The image's HEALTHCHECK: exits 0 when the server reports ready (GET /v2/health/ready → 200),
// 1 otherwise, printing why (`docker inspect` shows it).
//
// Plain JavaScript started by node itself: a probe every few seconds should cost a Node start-up,
// not a TypeScript one. So it cannot import src/config.ts, the service's only reader of
// process.env; it reads the two settings it needs the same way, and test/deploy checks that its
// defaults are config.ts's.
const port = process.env.HTTP_PORT || '8080';
const host = process.env.HOST || '0.0.0.0';
const target = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/v2/health/ready`;

try {
  const response = await fetch(url, { signal: AbortSignal.timeout(2500) });
  const body = await response.text();
  console.log(`${url}: ${response.status} ${body.slice(0, 200)}`);
  process.exit(response.status === 200 ? 0 : 1);
} catch (err) {
  console.log(`${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
