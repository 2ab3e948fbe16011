// The chat page for self-hosting: the files of examples/chat/dist from the
// `page` disk service, with their content types ("/" is index.html), as
// wrangler's [assets] serves them.
const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', map: 'application/json', css: 'text/css' }

export default {
  async fetch(req, env) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return new Response('method not allowed', { status: 405 })
    const url = new URL(req.url)
    const path = url.pathname === '/' ? '/index.html' : url.pathname
    const file = await env.PAGE.fetch(new URL(path, url), { method: req.method })
    if (!file.ok || file.headers.get('Content-Type') === 'application/json') return new Response('not found', { status: 404 })
    const type = TYPES[path.slice(path.lastIndexOf('.') + 1)] ?? 'application/octet-stream'
    return new Response(file.body, { headers: { 'Content-Type': type } })
  },
}
