/** JSON calls to the Lightbox API with the session cookie and Django's CSRF header. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function getCookie(name: string, cookieString: string = typeof document !== 'undefined' ? document.cookie : ''): string {
  for (const part of cookieString.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Send to the login page (keeping where we were) when the session is gone. */
export function redirectToLogin(): void {
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/accounts/login/?next=${next}`);
}

export async function apiFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  if (!headers.has('Accept')) headers.set('Accept', 'application/json');
  if (UNSAFE.has(method)) headers.set('X-CSRFToken', getCookie('csrftoken'));
  if (init.body && typeof init.body === 'string' && !headers.has('Content-Type')) {
    headers.set('Content-Type', 'application/json');
  }
  return fetch(url, { ...init, method, headers, credentials: 'same-origin' });
}

export async function apiJson<T>(url: string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await apiFetch(url, init);
  } catch (e) {
    throw new HttpError(0, 'The server could not be reached. Check the connection and try again.');
  }
  if (res.status === 401 || res.status === 403) {
    // 403 with no session means the login expired; with a session it is a real refusal.
    const body = await res.json().catch(() => undefined);
    throw new HttpError(res.status, res.status === 401 ? 'Not signed in' : 'Access denied', body);
  }
  if (!res.ok) {
    const body = await res.json().catch(() => undefined);
    const detail = (body as { detail?: string } | undefined)?.detail;
    throw new HttpError(res.status, detail ?? `${res.status} ${res.statusText}`, body);
  }
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export interface Me {
  username: string;
  roles: string[];
  capabilities: string[];
}

export const getMe = () => apiJson<Me>('/api/accounts/me/');
