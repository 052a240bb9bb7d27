/**
 * Plain-text columns for dispatchctl's tables: each column as wide as its widest cell, two
 * spaces between columns, text columns left-aligned and numbers right-aligned.
 *
 * @param rows the header row first; every row has the same number of cells.
 * @param left indices of the columns aligned left (names, states, paths).
 */
export function formatColumns(rows: string[][], left: ReadonlySet<number>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => (left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
