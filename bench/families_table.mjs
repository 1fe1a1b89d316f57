// The Markdown table of the families section (bench/families.mjs, bench/run.mjs).

/** The median of numbers (the mean of the middle two for an even count); a number is its own median, an empty list null. */
export function median(xs) {
  if (typeof xs === 'number') return xs
  if (!Array.isArray(xs) || xs.length === 0) return null
  const s = xs.map(Number).filter(Number.isFinite).sort((a, b) => a - b)
  if (!s.length) return null
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The Markdown table: per family and thread count, ferronet against PyTorch at its best (the faster install). */
export function familyTable(all) {
  const out = ['| family | threads | ferronet | PyTorch at its best | ferronet / PyTorch | quality (ferronet vs PyTorch) |', '|---|--:|--:|--:|--:|---|']
  for (const fam of [...new Set(all.map((r) => r.family))]) {
    for (const t of [...new Set(all.filter((r) => r.family === fam).map((r) => r.threads))]) {
      const ok = all.filter((r) => r.family === fam && r.threads === t && r.status === 'ok' && r.cost?.value != null)
      // One row per framework: the median over rounds of the cost, the last round's quality.
      const byFramework = [...new Set(ok.map((r) => r.framework))].map((fw) => {
        const runs = ok.filter((r) => r.framework === fw)
        const value = median(runs.map((r) => r.cost.value))
        return { ...runs.at(-1), cost: { ...runs.at(-1).cost, value }, rounds: runs.length }
      })
      const f = byFramework.find((r) => r.framework === 'ferronet')
      const torch = byFramework.filter((r) => r.framework !== 'ferronet').sort((a, b) => a.cost.value - b.cost.value)[0]
      const unit = (f ?? torch)?.cost.unit ?? ''
      const q = (r) => (r?.quality?.value != null ? r.quality.value.toFixed(3) : '–')
      out.push(`| ${fam} | ${t} | ${f ? `${f.cost.value.toFixed(2)} ${unit}` : '–'} | ${torch ? `${torch.cost.value.toFixed(2)} ${unit} (${torch.version ?? torch.framework})` : '–'} | ${f && torch ? (f.cost.value / torch.cost.value).toFixed(2) : '–'} | ${f?.quality?.name ?? torch?.quality?.name ?? ''}: ${q(f)} vs ${q(torch)} |`)
    }
  }
  return out.join('\n')
}
