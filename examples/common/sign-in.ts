// The pages' side of the demo sign-in (the server side is auth.ts). It posts
// the user name to /auth/login. The Worker answers with an HttpOnly session
// cookie, and the browser attaches that cookie to every later /sync upgrade
// of this origin. The page never holds a credential of its own. A cookie is
// per browser profile, so to be a second user at once, use a private window.

/** Signs in as `user` and resolves to the name the server signed. */
export async function signIn(user: string): Promise<string> {
  const res = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  })
  if (!res.ok) {
    const why = `sign-in as "${user}" failed: ${await res.text()}`
    document.body.textContent = why
    throw new Error(why)
  }
  return ((await res.json()) as { user: string }).user
}
