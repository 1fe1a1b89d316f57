/** `ferronet report`: a training report (one self-contained HTML file) from a model file and its metrics log. */

import { basename } from 'node:path'
import { FerronetError } from '../errors.js'
import * as mnist from '../mnist/index.js'
import { Net } from '../net.js'
import { saliency } from '../explain.js'
import { readMetricsLog, writeReport } from '../report.js'

export interface ReportArgs {
  model: string
  log: string
  data?: string
  output?: string
  title?: string
}

export async function reportCommand(args: ReportArgs, log: (line: string) => void): Promise<void> {
  const net = await Net.load(args.model)
  const history = await readMetricsLog(args.log)
  // The test split ferronet train evaluates on: the IDX directory's t10k- files, or the 2,000 held-out package digits.
  const test = args.data !== undefined ? await mnist.load(args.data, 'test') : (await mnist.loadDigits()).split(8000, { seed: 0 })[1]
  const output = args.output ?? 'report.html'
  const run = history.find((r) => r.kind === 'run')
  const title = args.title ?? `Training report: ${(run?.kind === 'run' ? run.model : undefined) ?? basename(args.model)}`
  try {
    // The saliency section: ∂(class score)/∂input of sample test images (src/explain.ts).
    await writeReport(output, { net, history, test, title, saliency: (n, input, classIndex) => saliency(n, input, { classIndex }).map })
  } catch (error) {
    if (error instanceof FerronetError) throw error
    const code = (error as NodeJS.ErrnoException)?.code
    throw new FerronetError('ERR_WRITE', `${output}: cannot write the report (${code ?? (error as Error)?.message ?? String(error)})`, { cause: error })
  }
  const epochs = history.filter((r) => r.kind === 'epoch').length
  log(`wrote ${output}: ${epochs} epoch${epochs === 1 ? '' : 's'} from ${args.log}, evaluated on ${test.size} test samples${args.data !== undefined ? ` of ${args.data}` : ' (mnist package digits)'}`)
}
