/**
 * Worked examples the analysis page offers: each names the datasets and columns it reads, so that only those the
 * operator's licence covers are offered — an example sent as it is must never be an over-scope incident. They show
 * what the sandbox lets out: counts and sums by group, shares, ranks and moving means computed from the released figures, bands of
 * a sensitive value, a top-N sorted after disclosure control, a correlation, a join on a credit code, and
 * differentially private figures for L4 data.
 */
export type ExampleQuery = {
  id: string;
  zh: string;
  en: string;
  /** The columns read, per dataset. */
  reads: Record<string, string[]>;
  sql: string;
  kind: 'aggregate' | 'dp_aggregate';
  privacy?: { epsilon: number; bounds?: string };
};

export const exampleQueries: ExampleQuery[] = [
  {
    id: 'accounts-by-town',
    zh: '各镇住户数与用电量（按用电量排序）',
    en: 'Households and power use by town (sorted by use)',
    reads: { power_readings: ['town', 'account_id', 'kwh', 'customer_type'] },
    sql: "SELECT town, count(DISTINCT account_id) AS accounts, sum(kwh) AS kwh\nFROM power_readings\nWHERE customer_type = 'household'\nGROUP BY town\nORDER BY kwh DESC",
    kind: 'aggregate',
  },
  {
    id: 'town-share',
    zh: '各镇企业用电占比与排名（由已发布的数计算）',
    en: "Each town's share and rank of business power use (from the released figures)",
    reads: { power_readings: ['town', 'kwh', 'customer_type'] },
    sql: "SELECT town, sum(kwh) AS kwh,\n  round(100 * sum(kwh) / sum(sum(kwh)) OVER (), 1) AS share_pct,\n  rank() OVER (ORDER BY sum(kwh) DESC) AS place\nFROM power_readings\nWHERE customer_type = 'enterprise'\nGROUP BY town\nORDER BY place",
    kind: 'aggregate',
  },
  {
    id: 'quarterly-trend',
    zh: '按季度的用电量趋势',
    en: 'Power use by quarter',
    reads: { power_readings: ['month', 'kwh'] },
    sql: "SELECT date_trunc('quarter', month) AS quarter, sum(kwh) AS kwh, avg(kwh) AS mean_kwh\nFROM power_readings\nGROUP BY quarter\nORDER BY quarter",
    kind: 'aggregate',
  },
  {
    id: 'monthly-moving-mean',
    zh: '每月用电量及三个月移动平均、环比变化（由已发布的数计算）',
    en: 'Monthly power use with its three-month moving mean and change from the month before (from the released figures)',
    reads: { power_readings: ['month', 'kwh'] },
    sql: "SELECT month, sum(kwh) AS kwh,\n  round(avg(sum(kwh)) OVER (ORDER BY month ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)) AS moving_3m,\n  sum(kwh) - lag(sum(kwh)) OVER (ORDER BY month) AS change\nFROM power_readings\nGROUP BY month\nORDER BY month",
    kind: 'aggregate',
  },
  {
    id: 'use-bands',
    zh: '住户账单按用电量分档计数',
    en: 'Household bills in bands of use',
    reads: { power_readings: ['kwh', 'customer_type'] },
    sql: "SELECT CASE WHEN kwh < 150 THEN '1: < 150' WHEN kwh < 300 THEN '2: 150–299' ELSE '3: ≥ 300' END AS band,\n  count(*) AS bills, avg(kwh) AS mean_kwh\nFROM power_readings\nWHERE customer_type = 'household'\nGROUP BY band\nORDER BY band",
    kind: 'aggregate',
  },
  {
    id: 'price-per-kwh',
    zh: '电量与电费的相关系数和每千瓦时电价',
    en: 'Correlation of use and bill, and the price per kWh',
    reads: { power_readings: ['customer_type', 'kwh', 'amount_due'] },
    sql: 'SELECT customer_type, corr(kwh, amount_due) AS r, regr_slope(amount_due, kwh) AS price_per_kwh\nFROM power_readings\nGROUP BY customer_type',
    kind: 'aggregate',
  },
  {
    id: 'on-time-by-industry',
    zh: '各行业企业按时缴费比例（关联企业登记）',
    en: 'Share of bills paid on time by industry (joined with the enterprise register)',
    reads: { power_readings: ['uscc', 'paid_on_time', 'account_id'], enterprises: ['uscc', 'industry_code'] },
    sql: 'SELECT substr(e.industry_code, 1, 1) AS section,\n  count(DISTINCT p.account_id) AS accounts,\n  avg(CASE WHEN p.paid_on_time THEN 1 ELSE 0 END) AS on_time_share\nFROM power_readings p JOIN enterprises e ON p.uscc = e.uscc\nGROUP BY section\nORDER BY on_time_share DESC',
    kind: 'aggregate',
  },
  {
    id: 'trips-by-route',
    zh: '各线路出行人次与平均票价（差分隐私）',
    en: 'Trips and mean fare by route (differentially private)',
    reads: { transit_trips: ['route_id', 'fare'] },
    sql: 'SELECT route_id, count(*) AS trips, avg(fare) AS mean_fare\nFROM transit_trips\nGROUP BY route_id\nORDER BY trips DESC',
    kind: 'dp_aggregate',
    privacy: { epsilon: 1, bounds: 'fare: 0..5' },
  },
  {
    id: 'trips-by-hour',
    zh: '按小时的出行人次（差分隐私）',
    en: 'Trips by hour of the day (differentially private)',
    reads: { transit_trips: ['boarded_at'] },
    sql: 'SELECT hour(boarded_at) AS hour, count(*) AS trips\nFROM transit_trips\nGROUP BY hour\nORDER BY hour',
    kind: 'dp_aggregate',
    privacy: { epsilon: 0.5 },
  },
];

/** The columns of a dataset that the operator's licences in force name (all of them where a licence names none). */
export function licensedColumns(licences: Array<{ status: string; scope: Array<{ dataset: string; columns?: string[] }> }>, dataset: string): Set<string> | 'all' {
  const named = new Set<string>();
  for (const entry of licences.filter((licence) => licence.status === 'active').flatMap((licence) => licence.scope)) {
    if (entry.dataset !== dataset) continue;
    if (!entry.columns) return 'all';
    for (const column of entry.columns) named.add(column);
  }
  return named;
}

/** The examples every dataset and column of which a licence in force covers (`covered` says per dataset). */
export function offeredExamples(covered: (dataset: string) => Set<string> | 'all'): ExampleQuery[] {
  return exampleQueries.filter((example) =>
    Object.entries(example.reads).every(([dataset, columns]) => {
      const licensed = covered(dataset);
      return licensed === 'all' || (licensed.size > 0 && columns.every((column) => licensed.has(column)));
    }),
  );
}
