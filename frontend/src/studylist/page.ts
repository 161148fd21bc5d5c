/** The study list at `/`: QIDO-RS search with filters, sortable columns and limit/offset paging. */
import { searchStudies } from '../api/dicomweb';
import { HttpError, Me, redirectToLogin } from '../api/http';
import {
  SortKey,
  StudyFilters,
  StudyRow,
  buildStudyQuery,
  filtersFromParams,
  filtersToParams,
  sortRows,
  studyRow,
} from '../api/qido';
import { formatTime } from '../api/dicomjson';
import { clear, h } from '../util/dom';

const PAGE_SIZE = 25;
const MODALITIES = ['', 'CT', 'MR', 'CR', 'DX', 'US', 'PT', 'NM', 'XA', 'MG', 'SC', 'OT', 'SEG', 'SR'];

const COLUMNS: { key: SortKey; label: string }[] = [
  { key: 'patientName', label: 'Patient' },
  { key: 'patientId', label: 'Patient ID' },
  { key: 'studyDate', label: 'Date' },
  { key: 'modalities', label: 'Modality' },
  { key: 'description', label: 'Description' },
  { key: 'accession', label: 'Accession' },
  { key: 'instances', label: 'Images' },
];

export function mountStudyList(root: HTMLElement, me: Me): void {
  const params = new URLSearchParams(location.search);
  let filters: StudyFilters = filtersFromParams(params);
  let offset = Math.max(0, Number(params.get('offset') ?? 0) || 0);
  let sortKey: SortKey = (params.get('sort') as SortKey) || 'studyDate';
  let sortDir: 1 | -1 = params.get('dir') === 'asc' ? 1 : -1;
  let rows: StudyRow[] = [];
  let hasMore = false;
  let seq = 0;

  const input = (name: keyof StudyFilters, label: string, type = 'text') =>
    h('label', {}, label, h('input', { name, type, value: filters[name] ?? '', 'data-filter': name, autocomplete: 'off' }));
  const modality = h('select', { name: 'modality', 'data-filter': 'modality' }, ...MODALITIES.map((m) => h('option', { value: m }, m || 'Any')));
  modality.value = filters.modality ?? '';

  const form = h(
    'form',
    { class: 'filters', id: 'study-search' },
    input('patientName', 'Patient name'),
    input('patientId', 'Patient ID'),
    input('accessionNumber', 'Accession'),
    input('description', 'Description'),
    h('label', {}, 'Modality', modality),
    input('dateFrom', 'From', 'date'),
    input('dateTo', 'To', 'date'),
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
    h('button', { type: 'button', id: 'clear-filters' }, 'Clear'),
  );
  const status = h('div', { class: 'list-status', id: 'list-status', role: 'status' });
  const thead = h('thead');
  const tbody = h('tbody', { id: 'study-rows' });
  const table = h('table', { class: 'studies', id: 'studies' }, thead, tbody);
  const prev = h('button', { id: 'page-prev' }, '‹ Previous');
  const next = h('button', { id: 'page-next' }, 'Next ›');
  const pageInfo = h('span', { id: 'page-info' });
  const pager = h('div', { class: 'pager' }, prev, pageInfo, next);

  clear(root);
  root.appendChild(
    h(
      'div',
      { class: 'page studylist' },
      h('header', { class: 'topbar' }, h('h1', {}, 'Lightbox'), h('span', { class: 'spacer' }), h('span', { class: 'user' }, me.username), h('a', { href: '/accounts/logout/', id: 'logout', onclick: logout }, 'Sign out')),
      form,
      status,
      h('div', { class: 'table-wrap' }, table),
      pager,
    ),
  );

  function logout(ev: Event): void {
    // Django's LogoutView wants a POST with the CSRF token.
    ev.preventDefault();
    const f = h('form', { method: 'post', action: '/accounts/logout/' }, h('input', { type: 'hidden', name: 'csrfmiddlewaretoken', value: decodeURIComponent((document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) ?? [])[1] ?? '') }));
    document.body.appendChild(f);
    f.submit();
  }

  function readForm(): StudyFilters {
    const get = (n: string) => (form.querySelector(`[name="${n}"]`) as HTMLInputElement | HTMLSelectElement).value;
    return {
      patientName: get('patientName'),
      patientId: get('patientId'),
      accessionNumber: get('accessionNumber'),
      description: get('description'),
      modality: get('modality'),
      dateFrom: get('dateFrom'),
      dateTo: get('dateTo'),
    };
  }

  function syncUrl(): void {
    const p = filtersToParams(filters);
    if (offset) p.set('offset', String(offset));
    p.set('sort', sortKey);
    p.set('dir', sortDir === 1 ? 'asc' : 'desc');
    history.replaceState(null, '', `/?${p.toString()}`);
  }

  function renderHead(): void {
    clear(thead);
    const tr = h('tr');
    for (const c of COLUMNS) {
      const active = c.key === sortKey;
      const th = h('th', { 'data-sort': c.key, 'aria-sort': active ? (sortDir === 1 ? 'ascending' : 'descending') : 'none', tabindex: 0 }, c.label, active ? (sortDir === 1 ? ' ▲' : ' ▼') : '');
      const toggle = () => {
        if (sortKey === c.key) sortDir = sortDir === 1 ? -1 : 1;
        else {
          sortKey = c.key;
          sortDir = 1;
        }
        syncUrl();
        render();
      };
      th.addEventListener('click', toggle);
      th.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && toggle());
      tr.appendChild(th);
    }
    thead.appendChild(tr);
  }

  function render(): void {
    renderHead();
    clear(tbody);
    for (const r of sortRows(rows, sortKey, sortDir)) {
      const href = `/viewer/${encodeURIComponent(r.studyInstanceUID)}`;
      const tr = h(
        'tr',
        { 'data-study': r.studyInstanceUID, tabindex: 0, class: 'study-row' },
        h('td', {}, h('a', { href }, r.patientName || '(no name)')),
        h('td', {}, r.patientId),
        h('td', {}, r.studyDate, r.studyTime ? ` ${formatTime(r.studyTime)}` : ''),
        h('td', {}, r.modalities),
        h('td', {}, r.description),
        h('td', {}, r.accession),
        h('td', { class: 'num' }, r.instances ?? ''),
      );
      tr.addEventListener('dblclick', () => location.assign(href));
      tr.addEventListener('keydown', (e) => e.key === 'Enter' && location.assign(href));
      tbody.appendChild(tr);
    }
    const first = rows.length ? offset + 1 : 0;
    pageInfo.textContent = rows.length ? `${first}–${offset + rows.length}` : '';
    prev.disabled = offset === 0;
    next.disabled = !hasMore;
  }

  async function load(): Promise<void> {
    const mine = ++seq;
    status.textContent = 'Searching…';
    status.className = 'list-status busy';
    try {
      // Ask for one more than a page to know whether a next page exists.
      const q = buildStudyQuery(filters, { limit: PAGE_SIZE + 1, offset });
      const result = await searchStudies(q);
      if (mine !== seq) return;
      hasMore = result.length > PAGE_SIZE;
      rows = result.slice(0, PAGE_SIZE).map(studyRow);
      status.textContent = rows.length ? '' : offset ? 'No more studies.' : 'No studies match the search.';
      status.className = 'list-status';
      render();
    } catch (e) {
      if (mine !== seq) return;
      if (e instanceof HttpError && e.status === 401) return redirectToLogin();
      status.textContent = e instanceof HttpError && e.status === 0 ? 'The archive could not be reached. Check the connection and try again.' : `Search failed: ${(e as Error).message}`;
      status.className = 'list-status error';
      rows = [];
      render();
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    filters = readForm();
    offset = 0;
    syncUrl();
    void load();
  });
  form.querySelector('#clear-filters')!.addEventListener('click', () => {
    form.reset();
    for (const el of form.querySelectorAll('input')) (el as HTMLInputElement).value = '';
    modality.value = '';
    filters = {};
    offset = 0;
    syncUrl();
    void load();
  });
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    syncUrl();
    void load();
  });
  next.addEventListener('click', () => {
    offset += PAGE_SIZE;
    syncUrl();
    void load();
  });

  render();
  void load();
}
