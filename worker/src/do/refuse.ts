import { CloseCode } from '../protocol/codes.js'

/**
 * Answers a WebSocket upgrade by accepting it and closing it at once with a
 * terminal code (default 4401, unauthorized). A browser's WebSocket cannot
 * read an HTTP 401, so a plain 401 looks like a network error and clients
 * retry forever; a 44xx close tells them to stop. Plain HTTP requests get
 * the HTTP status instead.
 */
export function refuseConnection(req: Request, code: number = CloseCode.UNAUTHORIZED, reason = 'unauthorized'): Response {
  if (req.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
    return new Response(reason, { status: code === CloseCode.FORBIDDEN ? 403 : 401 })
  }
  const { 0: client, 1: server } = new WebSocketPair()
  server.accept()
  server.close(code, reason)
  return new Response(null, { status: 101, webSocket: client })
}
