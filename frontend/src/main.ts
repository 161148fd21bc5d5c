/** Entry point: one page, two routes (`/` study list, `/viewer/<StudyInstanceUID>`). */
import './styles/app.css';
import { HttpError, getMe, redirectToLogin } from './api/http';
import { showBanner } from './util/dom';
import { route } from './router';
import { warmStudy } from './api/dicomweb';

async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  const r = route(location.pathname);
  // Start the viewer's code and the study's first requests at once, alongside the who-am-I call.
  const viewerModule = r.page === 'viewer' ? import('./viewer/app') : undefined;
  if (r.page === 'viewer') warmStudy(r.study);
  viewerModule?.catch(() => undefined);
  let me;
  try {
    me = await getMe();
  } catch (e) {
    if (e instanceof HttpError && (e.status === 401 || e.status === 403)) return redirectToLogin();
    root.textContent = 'The Lightbox server could not be reached. Check the connection and reload the page.';
    return;
  }
  if (r.page === 'viewer' && viewerModule) {
    // The viewer (Cornerstone3D) is a separate chunk: the study list stays small and fast.
    const { mountViewer } = await viewerModule;
    await mountViewer(root, r.study, me);
  } else if (r.page === 'list') {
    const { mountStudyList } = await import('./studylist/page');
    mountStudyList(root, me);
  } else {
    root.textContent = 'Page not found.';
  }
}

window.addEventListener('unhandledrejection', (e) => {
  console.error('[lightbox]', e.reason);
});

main().catch((e) => {
  console.error(e);
  showBanner(`Lightbox failed to start: ${(e as Error).message}`);
});
