import { describe, expect, it } from 'vitest';
import type { ExecutionPlan } from '../../src/analysis/execution-plan.js';
import { checkOutput } from '../../src/disclosure/disclosure-control.js';
import type { GradePolicy } from '../../src/policy/disclosure-policy.js';
import type { QueryResult } from '../../src/sandbox/sandbox-protocol.js';

/**
 * The rules on hand-made per-cell figures where the right answer is known. (The end-to-end tests in
 * tests/jobs run the same rules on figures DuckDB computes from loaded data.)
 */
const grade = (overrides: Partial<GradePolicy> = {}): GradePolicy => ({
  jobKinds: ['aggregate'],
  rowLevelOutput: 'never',
  minContributors: 10,
  dominance: null,
  pPercent: null,
  zeros: 'release',
  roundCountsTo: null,
  maxOutputRows: 100,
  reviewers: 0,
  differentialPrivacy: 'optional',
  limits: { memoryMb: 256, threads: 1, wallSeconds: 10 },
  ...overrides,
});

type Cell = { keys: unknown[]; count: number; total: number; contributors: number; top?: number[] };

function outputOf(cells: Cell[], policy: GradePolicy, options: { sensitiveKeys?: number[] } = {}) {
  const groupKeyCount = cells[0]!.keys.length;
  const keyColumns = cells[0]!.keys.map((_, index) => `k${index}`);
  const plan: ExecutionPlan = {
    kind: 'aggregate',
    mainSql: '',
    groupKeyCount,
    groupKeyPositions: keyColumns.map((_, index) => index),
    visibleColumns: [
      ...keyColumns.map((name, index) => ({ name, role: 'group_key' as const, ...(options.sensitiveKeys?.includes(index) ? { hiddenWhenSuppressed: true as const } : {}) })),
      { name: 'n', role: 'count' },
      { name: 'total', role: 'measure' },
    ],
    contributorDatasets: ['d'],
    unitsCountedInMain: [],
    measuresInMain: [],
    unitQueries: [{ unitIndex: 0, measureIndexes: [0], sql: 'x' }],
    rowLimit: policy.maxOutputRows + 1,
  };
  const results: QueryResult[] = [
    {
      name: 'main',
      columns: [...keyColumns, 'n', 'total'],
      rows: cells.map((cell) => [...cell.keys, cell.count, cell.total]),
      truncated: false,
    },
    {
      name: 'unit:0',
      columns: [...keyColumns.map((_, index) => `__pds_g_${index}`), '__pds_c', '__pds_total_0', '__pds_top_0'],
      rows: cells.map((cell) => [
        ...cell.keys,
        cell.contributors,
        cell.total,
        cell.top ?? [cell.total / cell.contributors, cell.total / cell.contributors],
      ]),
      truncated: false,
    },
  ];
  return checkOutput({ plan, results, grade: policy, gradeName: 'L2', policyHash: 'test' });
}

const suppressedCodes = (output: ReturnType<typeof checkOutput>) =>
  output.outcome === 'released' ? Object.fromEntries(output.manifest.suppressedRows.map((row) => [row.row, row.code])) : output.code;

describe('primary suppression', () => {
  it('a cell with fewer contributors than the threshold is suppressed and says so without the count', () => {
    const output = outputOf([{ keys: ['a'], count: 9, total: 90, contributors: 9 }, { keys: ['b'], count: 30, total: 300, contributors: 30 }, { keys: ['c'], count: 40, total: 400, contributors: 40 }], grade());
    expect(suppressedCodes(output)).toMatchObject({ 0: 'BELOW_THRESHOLD' });
    if (output.outcome !== 'released') throw new Error('withheld');
    expect(output.rows[0]).toEqual(['a', null, null]);
    expect(JSON.stringify(output.manifest)).not.toMatch(/\b9\b|\b90\b/);
  });

  it('a cell with exactly the threshold is released', () => {
    const output = outputOf([{ keys: ['a'], count: 10, total: 100, contributors: 10 }], grade());
    expect(output.outcome === 'released' && output.rows[0]).toEqual(['a', 10, 100]);
  });

  it('dominance (n=2, k=90): two contributors holding over 90 % suppress the cell', () => {
    const output = outputOf(
      [
        { keys: ['a'], count: 12, total: 10_000 + 5_000 + 10 * 100, contributors: 12, top: [10_000, 5_000] },
        { keys: ['b'], count: 12, total: 1200, contributors: 12, top: [100, 100] },
        { keys: ['c'], count: 12, total: 1200, contributors: 12, top: [100, 100] },
      ],
      grade({ dominance: { n: 2, k: 90 } }),
    );
    // 15,000 of 16,000 is 93.75 % > 90 %.
    expect(suppressedCodes(output)).toMatchObject({ 0: 'DOMINANCE' });
  });

  it('dominance: a cell just under k is released', () => {
    const output = outputOf([{ keys: ['a'], count: 12, total: 20_000, contributors: 12, top: [9_000, 8_900] }], grade({ dominance: { n: 2, k: 90 } }));
    expect(output.outcome === 'released' && output.manifest.suppressedRows).toEqual([]);
  });

  it('the p% rule: the second largest could estimate the largest within p % → suppressed', () => {
    // largest 1000, second 300, the rest 50: the second contributor knows total − itself = 1050, within 5 % of 1000.
    const output = outputOf([{ keys: ['a'], count: 12, total: 1350, contributors: 12, top: [1000, 300] }], grade({ pPercent: 10 }));
    expect(suppressedCodes(output)).toEqual('NOTHING_RELEASABLE');
  });

  it('the p% rule: enough spread → released', () => {
    const output = outputOf([{ keys: ['a'], count: 12, total: 1500, contributors: 12, top: [1000, 300] }], grade({ pPercent: 10 }));
    expect(output.outcome).toBe('released');
  });

  it('zeros are suppressed where the grade says so, and released where it does not', () => {
    const cells = [{ keys: ['a'], count: 20, total: 0, contributors: 20, top: [0, 0] }, { keys: ['b'], count: 20, total: 5, contributors: 20 }, { keys: ['c'], count: 20, total: 7, contributors: 20 }];
    expect(suppressedCodes(outputOf(cells, grade({ zeros: 'suppress' })))).toMatchObject({ 0: 'ZERO_CELL' });
    expect(suppressedCodes(outputOf(cells, grade({ zeros: 'release' })))).toEqual({});
  });

  it('counts are rounded to the base the grade names; other measures are not', () => {
    const output = outputOf([{ keys: ['a'], count: 23, total: 233, contributors: 23 }], grade({ roundCountsTo: 5 }));
    expect(output.outcome === 'released' && output.rows[0]).toEqual(['a', 25, 233]);
  });

  it('an output over the row limit is withheld whole', () => {
    const cells = Array.from({ length: 5 }, (_, index) => ({ keys: [index], count: 50, total: 50, contributors: 50 }));
    const output = outputOf(cells, grade({ maxOutputRows: 4 }));
    expect(output).toMatchObject({ outcome: 'withheld', code: 'OUTPUT_TOO_LARGE' });
  });
});

describe('secondary suppression', () => {
  it('one suppressed cell in a one-way table takes the smallest other cell with it (the total is known elsewhere)', () => {
    const output = outputOf(
      [
        { keys: ['x'], count: 12, total: 1200, contributors: 12 },
        { keys: ['y'], count: 5, total: 500, contributors: 5 },
        { keys: ['w'], count: 15, total: 750, contributors: 15 },
        { keys: ['v'], count: 20, total: 200, contributors: 20 },
      ],
      grade(),
    );
    expect(suppressedCodes(output)).toEqual({ 0: 'SECONDARY_SUPPRESSION', 1: 'BELOW_THRESHOLD' });
  });

  it('in a two-way table every row and column line ends with zero or at least two suppressed cells', () => {
    const cells: Cell[] = [];
    const districts = ['A', 'B', 'C'];
    const sectors = ['s1', 's2', 's3'];
    for (const district of districts) {
      for (const sector of sectors) {
        const contributors = district === 'A' && sector === 's1' ? 4 : 10 + districts.indexOf(district) * 3 + sectors.indexOf(sector);
        cells.push({ keys: [district, sector], count: contributors, total: contributors * 10, contributors });
      }
    }
    const output = outputOf(cells, grade());
    if (output.outcome !== 'released') throw new Error('withheld');
    const hidden = new Set(output.manifest.suppressedRows.map((row) => row.row));
    expect(output.manifest.suppressedRows.filter((row) => row.code === 'BELOW_THRESHOLD')).toHaveLength(1);
    for (const [dimension, values] of [[0, districts], [1, sectors]] as const) {
      for (const value of values) {
        const line = cells.map((cell, index) => ({ cell, index })).filter(({ cell }) => cell.keys[dimension] === value);
        const count = line.filter(({ index }) => hidden.has(index)).length;
        expect(count === 0 || count >= 2).toBe(true);
      }
    }
  });

  it('a single-cell output needs no secondary suppression', () => {
    const output = outputOf([{ keys: [], count: 50, total: 500, contributors: 50 }].map((cell) => ({ ...cell, keys: ['all'] })), grade());
    expect(output.outcome === 'released' && output.manifest.suppressedRows).toEqual([]);
  });
});

describe('the manifest', () => {
  it('records the content hash, counts, policy and each suppressed row with its code', () => {
    const output = outputOf([{ keys: ['a'], count: 3, total: 30, contributors: 3 }, { keys: ['b'], count: 30, total: 300, contributors: 30 }, { keys: ['c'], count: 31, total: 310, contributors: 31 }], grade());
    if (output.outcome !== 'released') throw new Error('withheld');
    expect(output.manifest).toMatchObject({
      rowCount: 3,
      columnCount: 3,
      policyHash: 'test',
      grade: 'L2',
      suppressedByCode: { BELOW_THRESHOLD: 1, SECONDARY_SUPPRESSION: 1 },
      contentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });
});

describe('group keys computed from a sensitive column', () => {
  // Income bands by town; the (A, 5) cell has two people: its band could be one person's income.
  const cells: Cell[] = [
    { keys: ['A', 5], count: 2, total: 11, contributors: 2 },
    { keys: ['A', 1], count: 30, total: 40, contributors: 30 },
    { keys: ['B', 1], count: 25, total: 30, contributors: 25 },
    { keys: ['A', 2], count: 20, total: 45, contributors: 20 },
  ];

  it('are withheld in a suppressed cell, which is listed last; other keys stay', () => {
    const output = outputOf(cells, grade(), { sensitiveKeys: [1] });
    if (output.outcome !== 'released') throw new Error(output.code);
    // (A, 5) is below the threshold and takes (A, 2) with it along the town line: both lose their band, go last.
    expect(output.rows).toEqual([
      ['A', 1, 30, 40],
      ['B', 1, 25, 30],
      ['A', null, null, null],
      ['A', null, null, null],
    ]);
    expect(output.manifest.suppressedRows.map((row) => [row.row, row.code])).toEqual([
      [2, 'BELOW_THRESHOLD'],
      [3, 'SECONDARY_SUPPRESSION'],
    ]);
    // The cells the differencing guard remembers are named by their place in the main query's result.
    expect(output.releasedCells).toEqual([1, 2]);
  });

  it('go last ordered by what stays visible, not by the query order of the keys withheld', () => {
    // As a query sorted by the withheld band (descending) would list them: B9, A8, A7 small; B2 goes with B9.
    const sortedByBand: Cell[] = [
      { keys: ['B', 9], count: 2, total: 2, contributors: 2 },
      { keys: ['A', 8], count: 4, total: 4, contributors: 4 },
      { keys: ['A', 7], count: 3, total: 3, contributors: 3 },
      { keys: ['B', 2], count: 20, total: 20, contributors: 20 },
      { keys: ['B', 1], count: 25, total: 25, contributors: 25 },
      { keys: ['A', 1], count: 30, total: 30, contributors: 30 },
    ];
    const output = outputOf(sortedByBand, grade(), { sensitiveKeys: [1] });
    if (output.outcome !== 'released') throw new Error(output.code);
    expect(output.rows.slice(2)).toEqual([
      ['A', null, null, null],
      ['A', null, null, null],
      ['B', null, null, null],
      ['B', null, null, null],
    ]);
    expect(output.manifest.suppressedRows.map((row) => row.code)).toEqual(['BELOW_THRESHOLD', 'BELOW_THRESHOLD', 'BELOW_THRESHOLD', 'SECONDARY_SUPPRESSION']);
  });

  it('are shown as before when no key comes from a sensitive column', () => {
    const output = outputOf(cells, grade());
    if (output.outcome !== 'released') throw new Error(output.code);
    expect(output.rows[0]).toEqual(['A', 5, null, null]);
  });
});
