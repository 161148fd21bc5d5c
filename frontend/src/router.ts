/** Which page a path shows. StudyInstanceUIDs are digits and dots (PS3.5 9.1). */
export function route(pathname: string): { page: 'list' } | { page: 'viewer'; study: string } | { page: 'unknown' } {
  const m = /^\/viewer\/([0-9.]+)\/?$/.exec(pathname);
  if (m) return { page: 'viewer', study: m[1] };
  if (pathname === '/' || pathname === '/index.html') return { page: 'list' };
  return { page: 'unknown' };
}

