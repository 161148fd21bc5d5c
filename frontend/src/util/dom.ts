/**
 * Building DOM without innerHTML: strings always become text nodes, so DICOM values (patient names,
 * descriptions) can never inject markup.
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === 'class') {
      el.className = String(v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** A dismissable banner for errors and notices; the text is set with textContent. */
export function showBanner(text: string, kind: 'error' | 'info' | 'warn' = 'error', timeoutMs = 0): HTMLElement {
  let host = document.getElementById('banners');
  if (!host) {
    host = h('div', { id: 'banners', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(host);
  }
  const close = h('button', { class: 'banner-close', 'aria-label': 'Dismiss', title: 'Dismiss' }, '×');
  const msg = h('span', { class: 'banner-text' });
  msg.textContent = text;
  const banner = h('div', { class: `banner banner-${kind}`, 'data-kind': kind }, msg, close);
  close.addEventListener('click', () => banner.remove());
  host.appendChild(banner);
  if (timeoutMs > 0) setTimeout(() => banner.remove(), timeoutMs);
  return banner;
}
