/** Quadrature rules on [0, 1] for Integrated Gradients, named as Captum names them. */

import { OptionError } from '../errors.js'

/**
 * How {@link integratedGradients} integrates the gradient along the path, with `n` points:
 *
 * - `'gausslegendre'` (default, Captum's): the `n`-point Gauss–Legendre rule mapped to
 *   [0, 1] (`α = (1 + xᵢ)/2`, weight `wᵢ/2`, as Captum maps numpy's `leggauss`); exact
 *   for polynomials of degree `2n − 1`;
 * - `'riemann_left'`, `'riemann_right'`, `'riemann_middle'`: `α = i/n`, `(i + 1)/n`,
 *   `(i + ½)/n` for `i = 0..n−1`, each weighted `1/n` (Captum's);
 * - `'riemann_trapezoid'`: `α = i/(n − 1)` for `i = 0..n−1`, weights `1/(n − 1)`, halved
 *   at both ends: the trapezoid rule, whose weights sum to 1. (Captum's own
 *   `riemann_trapezoid` weights these points `1/n`, halved at the ends, which sums to
 *   `1 − 1/n`; ferronet does not copy that.)
 */
export type IntegrationMethod = 'gausslegendre' | 'riemann_left' | 'riemann_right' | 'riemann_middle' | 'riemann_trapezoid'

/** Every {@link IntegrationMethod}: the values `integratedGradients`' `method` accepts. */
export const INTEGRATION_METHODS: readonly IntegrationMethod[] = ['gausslegendre', 'riemann_left', 'riemann_right', 'riemann_middle', 'riemann_trapezoid']

/** The points `alphas` (ascending, in [0, 1]) and `weights` (summing to 1) of a rule with `n` points. */
export function integrationRule(method: IntegrationMethod, n: number): { alphas: Float64Array; weights: Float64Array } {
  if (!Number.isInteger(n) || n < (method === 'riemann_trapezoid' ? 2 : 1)) {
    throw new OptionError('steps', `must be an integer >= ${method === 'riemann_trapezoid' ? 2 : 1} for ${method}, got ${String(n)}`)
  }
  const alphas = new Float64Array(n)
  const weights = new Float64Array(n)
  switch (method) {
    case 'gausslegendre': {
      const { nodes, weights: w } = gaussLegendre(n)
      for (let i = 0; i < n; i++) {
        alphas[i] = 0.5 * (1 + nodes[i]!)
        weights[i] = 0.5 * w[i]!
      }
      break
    }
    case 'riemann_left':
    case 'riemann_right':
    case 'riemann_middle': {
      const shift = method === 'riemann_left' ? 0 : method === 'riemann_right' ? 1 : 0.5
      for (let i = 0; i < n; i++) {
        alphas[i] = (i + shift) / n
        weights[i] = 1 / n
      }
      break
    }
    case 'riemann_trapezoid':
      for (let i = 0; i < n; i++) {
        alphas[i] = i / (n - 1)
        weights[i] = (i === 0 || i === n - 1 ? 0.5 : 1) / (n - 1)
      }
      break
    default:
      throw new OptionError('method', `must be one of ${INTEGRATION_METHODS.join(', ')}, got ${String(method)}`)
  }
  return { alphas, weights }
}

/** Pₙ(x) and Pₙ'(x), by the three-term recurrence. */
function legendre(n: number, x: number): { p: number; dp: number } {
  let p0 = 1
  let p1 = x
  for (let k = 2; k <= n; k++) {
    const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
    p0 = p1
    p1 = p2
  }
  const p = n === 0 ? 1 : n === 1 ? x : p1
  const previous = n === 1 ? 1 : p0
  return { p, dp: (n * (x * p - previous)) / (x * x - 1) }
}

/**
 * Nodes (ascending, in (−1, 1)) and weights of the `n`-point Gauss–Legendre rule, as
 * numpy's `polynomial.legendre.leggauss(n)`: Newton's method on the Legendre
 * polynomial `Pₙ` from Tricomi's initial guesses, to machine precision. @internal
 */
export function gaussLegendre(n: number): { nodes: Float64Array; weights: Float64Array } {
  const nodes = new Float64Array(n)
  const weights = new Float64Array(n)
  for (let i = 0; i < Math.ceil(n / 2); i++) {
    // The i-th largest root.
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5))
    for (let iter = 0; iter < 100; iter++) {
      const { p, dp } = legendre(n, x)
      const dx = p / dp
      x -= dx
      if (Math.abs(dx) < 1e-16) break
    }
    // P_n' at the converged root, for the weight (exactly 1 for n = 1).
    const dp = n === 1 ? 1 : legendre(n, x).dp
    const w = 2 / ((1 - x * x) * dp * dp)
    nodes[n - 1 - i] = x
    weights[n - 1 - i] = w
    nodes[i] = -x
    weights[i] = w
  }
  return { nodes, weights }
}
