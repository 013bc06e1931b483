// The OpenAPI 3.1 document, generated from the zod schemas each route declares in its config
// (`config.doc`). Routes are collected as they are registered, so every documented route is a
// real one and the schemas shown are the ones that validate.
// Kept over @fastify/swagger + fastify-type-provider-zod (issue 14, prototyped on all routes): net 76 fewer lines but 45 of glue
// left, +26 packages (12 MiB, one wants Node >= 22), app build 1.5x slower, 2 client answers changed (query checked after body; null body).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ErrorBody as ErrorSchema } from './schemas.ts';

export interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  contentType?: string;
  headers?: Record<string, string>;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  tag: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Content type → schema; 'binary' for raw bytes. */
  body?: Record<string, z.ZodType | 'binary'>;
  bodyRequired?: boolean;
  responses: Record<number, ResponseDoc>;
  /** Needs the bearer token (when one is configured). */
  auth?: boolean;
}

interface DocumentedRoute {
  method: string;
  url: string;
  doc: RouteDoc;
}

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === 'path' || (object.required ?? []).includes(name),
      ...(description !== undefined ? { description } : {}),
      schema: rest,
    };
  });
}

function operation(route: DocumentedRoute): JsonSchema {
  const { doc } = route;
  const responses: Record<string, JsonSchema> = {};
  for (const [status, response] of Object.entries(doc.responses)) {
    responses[status] = {
      description: response.description,
      ...(response.schema ? { content: { [response.contentType ?? 'application/json']: { schema: jsonSchema(response.schema, 'output') } } } : {}),
      ...(response.headers
        ? { headers: Object.fromEntries(Object.entries(response.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) }
        : {}),
    };
  }
  return {
    tags: [doc.tag],
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    operationId: `${route.method.toLowerCase()}${route.url.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
    parameters: [...parameters(doc.params, 'path'), ...parameters(doc.query, 'query')],
    ...(doc.body
      ? {
        requestBody: {
          required: doc.bodyRequired ?? true,
          content: Object.fromEntries(Object.entries(doc.body).map(([type, schema]) => [
            type,
            { schema: schema === 'binary' ? { type: 'string', format: 'binary' } : jsonSchema(schema, 'input') },
          ])),
        },
      }
      : {}),
    responses,
    ...(doc.auth ? { security: [{ bearer: [] }] } : {}),
  };
}

/** Collects documented routes as they are registered; call before registering any. */
export function collectRouteDocs(app: FastifyInstance): DocumentedRoute[] {
  const routes: DocumentedRoute[] = [];
  app.addHook('onRoute', (options) => {
    const doc = options.config?.doc;
    if (!doc) return;
    for (const method of [options.method].flat()) {
      if (method === 'HEAD') continue;
      routes.push({ method, url: options.url, doc });
    }
  });
  return routes;
}

export function buildOpenApi(routes: readonly DocumentedRoute[], info: { title: string; version: string; description: string }): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info,
    tags: [...new Set(routes.map((r) => r.doc.tag))].map((name) => ({ name })),
    paths,
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}

/** Error responses of a route, all `{"error": "..."}`. */
export function errorDocs(errors: Record<number, string>): Record<number, ResponseDoc> {
  return Object.fromEntries(Object.entries(errors).map(([status, description]) => [status, { description, schema: ErrorSchema }]));
}
