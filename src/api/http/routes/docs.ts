// GET /openapi.json and GET /docs (the same document as a self-contained HTML page). Built on
// first request, once every route has registered.
import type { FastifyInstance } from 'fastify';
import { renderDocsPage } from '../docs-page.ts';
import { buildOpenApi, type collectRouteDocs } from '../openapi.ts';
import { SERVER_INFO } from '../../oip/index.ts';

export async function docsRoutes(app: FastifyInstance, routes: ReturnType<typeof collectRouteDocs>): Promise<void> {
  let document: Record<string, unknown> | undefined;
  let page: string | undefined;
  const getDocument = () => (document ??= buildOpenApi(routes, {
    title: SERVER_INFO.name,
    version: SERVER_INFO.version,
    description: `${SERVER_INFO.description}. Errors are {"error": "message"} with a non-2xx status.`,
  }));

  app.get('/openapi.json', { config: { quiet: true } }, async () => getDocument());
  app.get('/docs', { config: { quiet: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').send(page ??= renderDocsPage(getDocument())));
}
