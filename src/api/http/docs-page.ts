// /docs: the OpenAPI document rendered as one self-contained HTML page, server-side. No
// script, no CDN, no fonts to fetch: it works on an air-gapped host and under a strict CSP.
// Kept over @fastify/swagger-ui (issue 14): it works offline too, but shows nothing without its
// 2.1 MB of script and CSS (+26 packages with @fastify/static); this is 64 lines and ~110 KB of HTML.

type Json = Record<string, unknown>;

const escape = (text: unknown): string =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const pretty = (value: unknown): string => `<pre>${escape(JSON.stringify(value, null, 2))}</pre>`;

function parametersTable(parameters: Json[]): string {
  if (parameters.length === 0) return '';
  const rows = parameters.map((p) => `<tr><td><code>${escape(p.name)}</code></td><td>${escape(p.in)}</td><td>${p.required ? 'yes' : 'no'}</td>` +
    `<td><code>${escape(JSON.stringify(p.schema))}</code></td><td>${escape(p.description ?? '')}</td></tr>`);
  return `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>${rows.join('')}</table>`;
}

function content(content: Json | undefined): string {
  if (!content) return '';
  return Object.entries(content).map(([type, media]) =>
    `<details><summary><code>${escape(type)}</code></summary>${pretty((media as Json).schema)}</details>`).join('');
}

function operationHtml(method: string, path: string, op: Json): string {
  const responses = Object.entries((op.responses ?? {}) as Record<string, Json>).map(([status, r]) =>
    `<li><b>${escape(status)}</b> ${escape(r.description)}${content(r.content as Json | undefined)}</li>`).join('');
  const body = op.requestBody as Json | undefined;
  return `<section class="op" id="${escape(op.operationId)}">
<h3><span class="m ${escape(method)}">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code>${op.security ? ' <span class="lock">bearer token</span>' : ''}</h3>
<p>${escape(op.summary)}</p>${op.description ? `<p class="d">${escape(op.description)}</p>` : ''}
${parametersTable((op.parameters ?? []) as Json[])}
${body ? `<h4>Request body</h4>${content(body.content as Json)}` : ''}
<h4>Responses</h4><ul>${responses}</ul></section>`;
}

export function renderDocsPage(document: Json): string {
  const info = document.info as Json;
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = String((op.tags as string[] | undefined)?.[0] ?? 'other');
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push(operationHtml(method, path, op));
    }
  }
  const sections = [...byTag].map(([tag, ops]) => `<h2 id="tag-${escape(tag)}">${escape(tag)}</h2>${ops.join('\n')}`).join('\n');
  const toc = [...byTag.keys()].map((tag) => `<a href="#tag-${escape(tag)}">${escape(tag)}</a>`).join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(info.title)} API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.6em;overflow:auto;max-height:30em}
.op{border:1px solid #ddd;border-radius:6px;padding:.2em 1em;margin:1em 0}
.m{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;padding:0 .4em}
.get{background:#2b7bb9}.post{background:#3a9a4d}.put{background:#b9822b}.delete{background:#b93a2b}
.lock{font-size:12px;background:#eee;border-radius:4px;padding:0 .4em}.d{white-space:pre-wrap;color:#444}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
</style></head><body>
<h1>${escape(info.title)} <small>${escape(info.version)}</small></h1>
<p>${escape(info.description)}</p><p>${toc} · <a href="/openapi.json">openapi.json</a></p>
${sections}
</body></html>`;
}
