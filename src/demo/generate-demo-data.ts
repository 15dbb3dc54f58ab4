import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { industryCodes, towns } from './demo-catalogue.js';
import { makeCreditCode, residentIdCheckCharacter } from '../catalog/identity-numbers.js';
import { seededRandom, type SeededRandom } from './seeded-random.js';
import { isCalendarDay } from '../time/china-time.js';

/**
 * Generates the demo data of the Lingang Special Area as files, exactly as an institution would deliver them:
 * residents and enterprises as CSV (made in JavaScript, with valid check digits), utility readings and transit
 * trips as Parquet (made inside DuckDB from hashes of the seed, so millions of rows take seconds).
 * The same seed and scale always give the same rows.
 */
/** `version` is the dataset version the file becomes when loaded in order (1 unless it is a later delivery). */
export type DemoFile = { datasetId: string; file: string; format: 'csv' | 'parquet'; version: number };

export type DemoSizes = { residents: number; enterprises: number; trips: number; months: number };

/**
 * The span the demo's records cover, ending on `lastDay` (`YYYY-MM-DD`): the utilities bill whole months, so their
 * readings end with the last month complete by then; trips run to `lastDay` itself. `pds serve` ends the demo the
 * day before it generates it, so a newly generated demo is as fresh as a real delivery would be (a demo ending in
 * a fixed year fails its own freshness rules on every load after it).
 */
export function demoPeriod(lastDay: string, months: number): { firstMonth: string; lastMonth: string; lastDay: string; days: number } {
  if (!isCalendarDay(lastDay)) throw new Error(`not a date: ${lastDay}`);
  const end = new Date(`${lastDay}T00:00:00Z`);
  const endsAMonth = new Date(end.getTime() + 86_400_000).getUTCDate() === 1;
  const lastMonthIndex = end.getUTCFullYear() * 12 + end.getUTCMonth() - (endsAMonth ? 0 : 1);
  const monthStart = (index: number) => new Date(Date.UTC(Math.floor(index / 12), index % 12, 1));
  const first = monthStart(lastMonthIndex - months + 1);
  return {
    firstMonth: first.toISOString().slice(0, 10),
    lastMonth: monthStart(lastMonthIndex).toISOString().slice(0, 10),
    lastDay,
    days: Math.round((end.getTime() - first.getTime()) / 86_400_000) + 1,
  };
}

export function demoSizes(scale: number): DemoSizes {
  return {
    residents: Math.max(200, Math.round(200_000 * scale)),
    enterprises: Math.max(40, Math.round(12_000 * scale)),
    trips: Math.max(500, Math.round(1_200_000 * scale)),
    months: 24,
  };
}

const pudongAreaCode = '310115';
const surnames = [...'王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤'];
const givenCharacters = [...'伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰文斌宇浩然子轩欣怡梓涵雨桐思远嘉豪晨阳佳琪海燕晓东振华'];
const brandWords = ['临港', '滴水湖', '东海', '洋山', '申港', '浦江', '海港', '新片', '蓝湾', '星辰', '远航', '智造', '未来', '云帆', '海纳'];
const industrySuffix: Record<string, string> = {
  C3612: '新能源汽车', C3670: '汽车部件', C3973: '集成电路', C3974: '显示科技', C2710: '医药',
  C3441: '泵业', I6513: '软件', I6450: '数据科技', G5521: '远洋运输', G5910: '物流',
  H6210: '餐饮管理', F5212: '超市', L7212: '投资管理', M7320: '研究院', E4710: '建设工程',
};

export async function generateDemoData(
  outputDir: string,
  options: { seed: string; scale: number; lastDay: string; onProgress?: (done: number, total: number, label: string) => void },
): Promise<DemoFile[]> {
  fs.mkdirSync(outputDir, { recursive: true, mode: 0o700 });
  const sizes = demoSizes(options.scale);
  const period = demoPeriod(options.lastDay, sizes.months);
  const progress = options.onProgress ?? (() => {});
  const steps = 7;
  const random = seededRandom(`${options.seed}/people`);

  progress(0, steps, 'residents');
  const residentsFile = path.join(outputDir, 'residents.csv');
  const residentIds = writeResidents(residentsFile, sizes.residents, random);

  progress(1, steps, 'enterprises');
  const enterprisesFile = path.join(outputDir, 'enterprises.csv');
  writeEnterprises(enterprisesFile, sizes.enterprises, residentIds, seededRandom(`${options.seed}/enterprises`));

  // The next day's delivery of the enterprise register, with the defects a real register has: mistyped ID
  // numbers of legal representatives and firms registered twice under one name. Quality rules find them.
  const enterprisesUpdateFile = path.join(outputDir, 'enterprises-update.csv');
  writeEnterprisesWithDefects(enterprisesFile, enterprisesUpdateFile, seededRandom(`${options.seed}/enterprise-defects`));

  progress(2, steps, 'bus routes');
  const routesFile = path.join(outputDir, 'bus_routes.csv');
  writeBusRoutes(routesFile, seededRandom(`${options.seed}/routes`));

  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    const seedNumber = Number.parseInt(Buffer.from(options.seed).toString('hex').slice(0, 12) || '1', 16) % 2_147_483_647;
    const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;
    await connection.run(`SET VARIABLE seed = ${seedNumber}`);
    await connection.run(`CREATE TABLE residents AS SELECT * FROM read_csv(${quote(residentsFile)}, header = true, all_varchar = true)`);
    await connection.run(`CREATE TABLE enterprises AS SELECT * FROM read_csv(${quote(enterprisesFile)}, header = true, all_varchar = true)`);
    await connection.run(`CREATE TABLE routes AS SELECT * FROM read_csv(${quote(routesFile)}, header = true, all_varchar = true)`);
    // One account per household and per enterprise; `u(...)` is a uniform number in [0, 1) from a hash of the seed.
    await connection.run(`CREATE MACRO u(a, b, c) AS (hash(getvariable('seed'), a, b, c) % 1000003) / 1000003.0`);
    await connection.run(`CREATE MACRO gauss(a, b) AS sqrt(-2 * ln(greatest(u(a, b, 1), 1e-9))) * cos(2 * pi() * u(a, b, 2))`);
    await connection.run(`
      CREATE TABLE accounts AS
      SELECT household_id AS key, 'household' AS customer_type, household_id, NULL::VARCHAR AS uscc,
             any_value(town) AS town, NULL::VARCHAR AS industry_code, count(*) AS size, false AS dominant, false AS late_payer
      FROM residents GROUP BY household_id
      UNION ALL
      SELECT uscc, 'enterprise', NULL, uscc, town, industry_code, 1,
             u(uscc, 'dominant', 0) < 0.01, u(uscc, 'late', 0) < 0.08
      FROM enterprises`);
    await connection.run(`CREATE TABLE months AS SELECT (DATE '${period.firstMonth}' + INTERVAL (m) MONTH)::DATE AS month, m FROM range(${sizes.months}) t(m)`);

    const utilities = [
      // id, account prefix, household base use, enterprise log-mean, price, who has it
      ['power_readings', 'P', 'kwh', 180, 8.5, 0.617, 1.0],
      ['water_readings', 'W', 'cubic_metres', 12, 5.5, 3.45, 1.0],
      ['gas_readings', 'G', 'cubic_metres', 25, 6.0, 3.0, 0.3],
    ] as const;
    let step = 3;
    for (const [datasetId, prefix, usageName, householdBase, enterpriseLogMean, price, enterpriseShare] of utilities) {
      progress(step++, steps, datasetId);
      const file = path.join(outputDir, `${datasetId}.parquet`);
      // Seasonal households (summer and winter peaks), log-normal enterprises with 1 % dominant users.
      await connection.run(`
        COPY (
          WITH numbered AS (
            -- Account numbers are unique by construction (a rank in a seeded order), never a hash that could collide.
            SELECT *, '${prefix}' || lpad((1000000000 + row_number() OVER (ORDER BY hash(getvariable('seed'), key, '${prefix}'), key) * 7919)::VARCHAR, 10, '0') AS account_id
            FROM accounts WHERE customer_type = 'household' OR u(key, '${prefix}', 'has') < ${enterpriseShare}
          )
          SELECT a.account_id,
                 a.customer_type, a.household_id, a.uscc, a.town, a.industry_code, months.month,
                 round(CASE WHEN a.customer_type = 'household'
                   THEN ${householdBase} * (0.6 + 0.25 * a.size) * (1 + 0.35 * cos(2 * pi() * (month(months.month) - 1 - 6.5) / 6))
                        * (0.7 + 0.6 * u(a.key, months.m, '${prefix}'))
                   ELSE exp(${enterpriseLogMean} + 1.2 * gauss(a.key, '${prefix}')) * (CASE WHEN a.dominant THEN 60 ELSE 1 END)
                        * (0.85 + 0.3 * u(a.key, months.m, '${prefix}'))
                 END, 1) AS ${usageName},
                 round(${usageName} * ${price} * (CASE WHEN a.customer_type = 'enterprise' THEN 1.3 ELSE 1 END), 2)::DECIMAL(14,2) AS amount_due,
                 u(a.key, months.m, 'paid-${prefix}') > (CASE WHEN a.late_payer THEN 0.35 ELSE 0.03 END) AS paid_on_time
          FROM numbered a CROSS JOIN months
          ORDER BY account_id, month
        ) TO ${quote(file)} (FORMAT parquet, COMPRESSION zstd)`);
    }

    progress(6, steps, 'transit trips');
    const tripsFile = path.join(outputDir, 'transit_trips.parquet');
    // 70 % of residents hold a registered card; 10 % of cards are anonymous. Trips cluster in rush hours.
    await connection.run(`
      CREATE TABLE cards AS
      SELECT row_number() OVER (ORDER BY resident_id) - 1 AS card_index,
             'T' || lpad((10000000000 + row_number() OVER (ORDER BY hash(getvariable('seed'), resident_id, 'card'), resident_id) * 104729)::VARCHAR, 11, '0') AS card_id,
             CASE WHEN u(resident_id, 'anonymous', 0) < 0.1 THEN NULL ELSE resident_id END AS resident_id
      FROM residents WHERE u(resident_id, 'card', 0) < 0.7`);
    await connection.run(`CREATE TABLE route_list AS SELECT row_number() OVER (ORDER BY route_id) - 1 AS route_index, route_id, list(stop_id ORDER BY stop_seq::INT) AS stops FROM routes GROUP BY route_id`);
    await connection.run(`
      COPY (
        WITH draws AS (
          SELECT i AS trip_id,
                 (SELECT count(*) FROM cards) AS card_count, (SELECT count(*) FROM route_list) AS route_count,
                 u(i, 'card', 0) AS card_draw, u(i, 'route', 0) AS route_draw,
                 u(i, 'day', 0) AS day_draw, u(i, 'hour', 0) AS hour_draw, u(i, 'board', 0) AS board_draw, u(i, 'ride', 0) AS ride_draw
          FROM range(${sizes.trips}) t(i)
        )
        SELECT d.trip_id, c.card_id, c.resident_id, r.route_id,
               r.stops[1 + floor(d.board_draw * (len(r.stops) - 1))::INT] AS board_stop_id,
               r.stops[least(len(r.stops), 2 + floor(d.board_draw * (len(r.stops) - 1))::INT + floor(d.ride_draw * 6)::INT)] AS alight_stop_id,
               TIMESTAMP '${period.firstMonth} 05:30:00'
                 + INTERVAL (floor(d.day_draw * ${period.days})::INT) DAY
                 + INTERVAL (CASE WHEN d.hour_draw < 0.35 THEN 7 * 60 + floor(u(d.trip_id, 'm', 0) * 120)
                                  WHEN d.hour_draw < 0.7 THEN 17 * 60 + floor(u(d.trip_id, 'm', 0) * 120)
                                  ELSE floor(u(d.trip_id, 'm', 0) * 17 * 60) END) MINUTE AS boarded_at,
               (CASE WHEN d.ride_draw < 0.8 THEN 2.00 ELSE 3.00 END)::DECIMAL(6,2) AS fare
        FROM draws d
        JOIN cards c ON c.card_index = floor(d.card_draw * d.card_count)
        JOIN route_list r ON r.route_index = floor(d.route_draw * d.route_count)
        ORDER BY d.trip_id
      ) TO ${quote(tripsFile)} (FORMAT parquet, COMPRESSION zstd)`);
    progress(7, steps, 'done');
  } finally {
    connection.closeSync();
    instance.closeSync();
  }

  return [
    { datasetId: 'residents', file: residentsFile, format: 'csv', version: 1 },
    { datasetId: 'enterprises', file: enterprisesFile, format: 'csv', version: 1 },
    { datasetId: 'bus_routes', file: routesFile, format: 'csv', version: 1 },
    ...['power_readings', 'water_readings', 'gas_readings', 'transit_trips'].map((datasetId) => ({
      datasetId,
      file: path.join(outputDir, `${datasetId}.parquet`),
      format: 'parquet' as const,
      version: 1,
    })),
    { datasetId: 'enterprises', file: enterprisesUpdateFile, format: 'csv', version: 2 },
  ];
}

function csvLine(values: Array<string | number>): string {
  return values.map((value) => (typeof value === 'string' && /[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : String(value))).join(',');
}

function writeResidents(file: string, count: number, random: SeededRandom): string[] {
  const lines = ['resident_id,name,birth_date,sex,town,household_id'];
  const ids: string[] = [];
  const usedBodies = new Set<string>();
  let householdNumber = 0;
  let remainingInHousehold = 0;
  let householdTown: string = towns[0];
  for (let i = 0; i < count; i++) {
    if (remainingInHousehold === 0) {
      householdNumber += 1;
      remainingInHousehold = random.pick([1, 1, 2, 2, 2, 3, 3, 3, 4, 5]);
      // Most people live in the new city; the older towns are smaller.
      householdTown = random.next() < 0.55 ? towns[0] : random.pick(towns);
    }
    remainingInHousehold -= 1;
    const birth = new Date(Date.UTC(1940, 0, 1) + Math.floor(random.next() * 83 * 365.25) * 86_400_000);
    const birthText = birth.toISOString().slice(0, 10);
    const sex = random.next() < 0.5 ? 'F' : 'M';
    let body: string;
    do {
      // Sequence digits: the last one is odd for men and even for women (GB 11643).
      const sequence = random.integer(0, 49) * 2 + (sex === 'M' ? 1 : 0);
      body = `${pudongAreaCode}${birthText.replaceAll('-', '')}${String(random.integer(0, 9))}${String(sequence).padStart(2, '0')}`;
    } while (usedBodies.has(body));
    usedBodies.add(body);
    const residentId = body + residentIdCheckCharacter(body);
    ids.push(residentId);
    const name = random.pickSkewed(surnames) + random.pick(givenCharacters) + (random.next() < 0.7 ? random.pick(givenCharacters) : '');
    lines.push(csvLine([residentId, name, birthText, sex, householdTown, `H${String(householdNumber).padStart(8, '0')}`]));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return ids;
}

function writeEnterprises(file: string, count: number, residentIds: string[], random: SeededRandom): void {
  const lines = ['uscc,name,legal_rep_id,legal_rep_name,registered_capital,industry_code,established_on,town,status'];
  const residentNames = new Map<string, string>();
  const residentsCsv = fs.readFileSync(path.join(path.dirname(file), 'residents.csv'), 'utf8').split('\n');
  for (const line of residentsCsv.slice(1)) {
    const [id, name] = line.split(',');
    if (id && name) residentNames.set(id, name);
  }
  const usedNames = new Set<string>();
  for (let i = 0; i < count; i++) {
    const organizationBody = String(10_000_000 + i * 7919 + random.integer(0, 7000)).slice(-8);
    const uscc = makeCreditCode(pudongAreaCode, organizationBody);
    const industry = random.pickSkewed(industryCodes);
    let name: string;
    let attempt = 0;
    do {
      name = `上海${random.pick(brandWords)}${random.pick(brandWords)}${industrySuffix[industry]}有限公司${attempt++ > 3 ? `（${i}）` : ''}`;
    } while (usedNames.has(name));
    usedNames.add(name);
    const representative = random.pick(residentIds);
    // Registered capital is heavy-tailed: most firms are small, a few are very large.
    const capital = Math.round(10 * Math.exp(random.next() * 9) * 100) / 100;
    const established = new Date(Date.UTC(2005, 0, 1) + Math.floor(random.next() * 18.5 * 365.25) * 86_400_000);
    lines.push(
      csvLine([
        uscc,
        name,
        representative,
        residentNames.get(representative) ?? '',
        capital.toFixed(2),
        industry,
        established.toISOString().slice(0, 10),
        random.next() < 0.6 ? towns[0] : random.pick(towns),
        random.next() < 0.93 ? 'active' : 'deregistered',
      ]),
    );
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

/**
 * Copies the register with seeded defects: about one row in 150 (at least two) gets a wrong check character in
 * the legal representative's ID number, which then also names no resident; about one in 200 (at least two) takes
 * the name of another firm. Credit codes stay valid: they are the register's key.
 */
function writeEnterprisesWithDefects(source: string, target: string, random: SeededRandom): void {
  const [header, ...rows] = fs.readFileSync(source, 'utf8').trimEnd().split('\n');
  const parsed = rows.map((line) => line.split(','));
  const order = parsed.map((_, index) => index);
  for (let index = order.length - 1; index > 0; index--) {
    const other = random.integer(0, index);
    [order[index], order[other]] = [order[other]!, order[index]!];
  }
  const badIds = Math.max(2, Math.round(parsed.length / 150));
  const sameNames = Math.max(2, Math.round(parsed.length / 200));
  for (const index of order.slice(0, badIds)) {
    const row = parsed[index]!;
    const wrong = '0123456789X'.replace(row[2]![17]!, '');
    row[2] = row[2]!.slice(0, 17) + wrong[random.integer(0, wrong.length - 1)]!;
  }
  for (const [offset, index] of order.slice(badIds, badIds + sameNames).entries()) {
    parsed[index]![1] = parsed[order[badIds + sameNames + offset]!]![1]!;
  }
  fs.writeFileSync(target, [header, ...parsed.map((row) => row.join(','))].join('\n') + '\n');
}

function writeBusRoutes(file: string, random: SeededRandom): void {
  const lines = ['route_id,route_name,stop_seq,stop_id,stop_name,town,latitude,longitude'];
  const roads = ['环湖西一路', '水芸路', '沪城环路', '申港大道', '临港大道', '古棕路', '云鹃路', '海港大道', '橄榄路', '方竹路', '南芦公路', '两港大道'];
  for (let route = 1; route <= 30; route++) {
    const routeId = `LG${String(route).padStart(2, '0')}`;
    const stops = random.integer(12, 28);
    const town = random.pick(towns);
    let latitude = 30.88 + random.next() * 0.12;
    let longitude = 121.83 + random.next() * 0.12;
    for (let seq = 1; seq <= stops; seq++) {
      latitude += (random.next() - 0.5) * 0.01;
      longitude += (random.next() - 0.5) * 0.01;
      const road = random.pick(roads);
      lines.push(
        csvLine([routeId, `临港${route}路`, seq, `${routeId}-S${String(seq).padStart(2, '0')}`, `${road}${random.pick(roads).slice(0, 2)}站`, town, latitude.toFixed(6), longitude.toFixed(6)]),
      );
    }
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
}
