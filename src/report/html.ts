/**
 * The report's page: one HTML file with its style inline, no script, no external
 * resource (a Content-Security-Policy forbids any), a table of contents and sections.
 */

import { FONT } from './charts.js'

/** Text escaped for HTML content and attribute values. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

/** A section of the page. */
export interface Section {
  id: string
  /** Heading, and the entry of the table of contents. */
  title: string
  /** Short entry for the table of contents (default: the title). */
  short?: string
  /** HTML of the section's content. */
  html: string
}

/** A sentence saying why a section is empty; `warn` marks a failure rather than missing data. */
export function empty(text: string, warn = false): string {
  return `<p class="empty${warn ? ' warn' : ''}">${esc(text)}</p>`
}

/** A paragraph under a heading (HTML allowed: callers escape). */
export function lead(html: string): string {
  return `<p class="lead">${html}</p>`
}

/** A chart or image group with an optional caption. */
export function figure(id: string, content: string, caption?: string): string {
  return `<figure id="${esc(id)}">${content}${caption ? `<figcaption>${caption}</figcaption>` : ''}</figure>`
}

/** Headline numbers. */
export function cards(items: readonly { label: string; value: string; hint?: string }[]): string {
  return `<div class="cards">${items.map((c) => `<div class="card"><div class="label">${esc(c.label)}</div><div class="value">${esc(c.value)}</div>${c.hint ? `<div class="hint">${esc(c.hint)}</div>` : ''}</div>`).join('')}</div>`
}

/** A table; cells are escaped text, `numeric` columns right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[], numeric: readonly number[] = [], foot?: readonly (string | number)[]): string {
  const cell = (tag: 'td' | 'th', v: string | number, i: number) => `<${tag}${numeric.includes(i) ? ' class="num"' : ''}>${esc(v)}</${tag}>`
  return `<table><thead><tr>${headers.map((h, i) => cell('th', h, i)).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((v, i) => cell('td', v, i)).join('')}</tr>`).join('')}</tbody>${foot ? `<tfoot><tr>${foot.map((v, i) => cell('td', v, i)).join('')}</tr></tfoot>` : ''}</table>`
}

const CSS = `
:root{--fg:#0f172a;--text:#1e293b;--muted:#64748b;--line:#e2e8f0;--bg:#f6f7fb;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;font:15px/1.55 ${FONT};color:var(--text);background:var(--bg);-webkit-font-smoothing:antialiased}
.layout{display:grid;grid-template-columns:210px minmax(0,1fr);max-width:1320px;margin:0 auto}
nav.toc{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding:32px 12px 24px 20px}
nav.toc .brand{font-weight:700;font-size:13px;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);margin:0 0 12px 10px}
nav.toc ol{list-style:none;margin:0;padding:0;counter-reset:toc}
nav.toc li{counter-increment:toc}
nav.toc a{display:block;padding:6px 10px;border-radius:7px;color:#334155;text-decoration:none;font-size:14px}
nav.toc a::before{content:counter(toc) ".";display:inline-block;width:1.5em;color:#94a3b8;font-variant-numeric:tabular-nums}
nav.toc a:hover{background:#e8edfb;color:var(--fg)}
main{padding:28px 32px 48px 20px;min-width:0}
header.hero{padding:8px 4px 4px}
h1{font-size:28px;line-height:1.2;margin:0 0 6px;color:var(--fg);letter-spacing:-.015em}
.subtitle{color:var(--muted);margin:0}
.subtitle b{color:var(--text);font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin:20px 0 4px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:12px 16px}
.card .label{color:var(--muted);font-size:11.5px;font-weight:600;text-transform:uppercase;letter-spacing:.05em}
.card .value{font-size:24px;font-weight:650;color:var(--fg);font-variant-numeric:tabular-nums;margin-top:2px}
.card .hint{color:var(--muted);font-size:12.5px}
section{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:22px 26px 24px;margin:20px 0;scroll-margin-top:12px}
section h2{font-size:19px;margin:0 0 4px;color:var(--fg);letter-spacing:-.01em}
section h3{font-size:14px;margin:18px 0 8px;color:#334155;text-transform:uppercase;letter-spacing:.05em}
.lead{color:var(--muted);margin:0 0 16px;max-width:80ch}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:24px 32px;align-items:start}
figure{margin:0;min-width:0}
figure svg{display:block;max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:13px;margin-top:6px;max-width:60ch}
.empty{margin:8px 0;padding:12px 16px;background:#f8fafc;border:1px dashed #cbd5e1;border-radius:10px;color:#475569}
.empty.warn{background:#fff7ed;border:1px solid #fdba74;color:#9a3412}
.note{color:var(--muted);font-size:13.5px;margin:10px 0 0}
table{border-collapse:collapse;font-size:13.5px;font-variant-numeric:tabular-nums}
th,td{padding:6px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{color:#475569;font-weight:600;background:#f8fafc;font-size:12.5px}
td.num,th.num{text-align:right}
tfoot td{font-weight:600;border-bottom:0}
.columns{display:flex;flex-wrap:wrap;gap:16px 40px;align-items:flex-start}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:0;font-size:13.5px}
.kv dt{color:var(--muted)}
.kv dd{margin:0;font-variant-numeric:tabular-nums;word-break:break-word}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f5f9;padding:1px 5px;border-radius:4px}
.mistakes{display:grid;grid-template-columns:repeat(auto-fill,minmax(104px,1fr));gap:12px}
.mistake{background:#f8fafc;border:1px solid var(--line);border-radius:10px;padding:8px;text-align:center}
.mistake img{display:block;margin:0 auto 6px;width:84px;height:auto;image-rendering:pixelated;border-radius:4px}
.mistake .labels{font-size:12.5px;line-height:1.35}
.mistake .wrong{color:#c2410c;font-weight:600}
.mistake .conf{color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(var(--tile,64px),1fr));gap:6px;max-width:calc(8 * (var(--tile,64px) + 6px))}
.tiles img{display:block;width:100%;height:auto;image-rendering:pixelated;border-radius:3px;outline:1px solid var(--line)}
.legend{display:flex;align-items:center;gap:10px;margin:14px 0 0;font-size:12.5px;color:var(--muted)}
.legend>span:not(:last-child){white-space:nowrap}
.legend img{flex:none;height:12px;width:240px;border-radius:3px;outline:1px solid var(--line)}
.saliency{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:14px}
.pair{background:#f8fafc;border:1px solid var(--line);border-radius:10px;padding:10px}
.pair .images{display:flex;gap:8px;justify-content:center}
.pair img{display:block;width:84px;height:auto;image-rendering:pixelated;border-radius:4px}
.pair .labels{text-align:center;font-size:12.5px;margin-top:6px}
.pair .kinds{display:flex;gap:8px;justify-content:center;font-size:11px;color:var(--muted)}
.pair .kinds span{width:84px;text-align:center}
footer{color:var(--muted);font-size:12.5px;margin:28px 4px 0}
@media (max-width:960px){.layout{grid-template-columns:1fr}nav.toc{position:static;max-height:none;padding:20px 20px 0}nav.toc ol{display:flex;flex-wrap:wrap;gap:4px}main{padding:12px 16px 40px}}
@media print{body{background:#fff}nav.toc{display:none}.layout{display:block}section{break-inside:avoid;border-color:#ccc}}
`

/** The whole page. */
export function page(o: { title: string; header: string; sections: readonly Section[]; footer: string }): string {
  const toc = o.sections.map((s) => `<li><a href="#${esc(s.id)}">${esc(s.short ?? s.title)}</a></li>`).join('')
  const body = o.sections.map((s) => `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>${s.html}</section>`).join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="ferronet">
<title>${esc(o.title)}</title>
<style>${CSS}</style>
</head>
<body>
<div class="layout">
<nav class="toc" aria-label="Contents"><p class="brand">Contents</p><ol>${toc}</ol></nav>
<main>
${o.header}
${body}
<footer>${o.footer}</footer>
</main>
</div>
</body>
</html>
`
}
