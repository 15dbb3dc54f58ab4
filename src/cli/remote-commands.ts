import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { AppError } from '../errors/app-error.js';
import { toCsv } from '../http/csv.js';
import { readBounds } from '../privacy/bounds-text.js';
import { progressBar } from './progress-bar.js';
import { gatewayRetryDelayMs, gatewayStatuses } from '../products/client/verification-client.js';
import type { toJobView } from '../jobs/submit-job.js';

/**
 * `pds jobs …` and `pds reports …`: clients of a running server's public API, like any operator's or regulator's
 * script. The token comes from --token, PDS_TOKEN, or in dev mode from DATA_DIR/dev-tokens.json (the role the
 * command needs). Exit codes: 0 done, 1 refused or failed (the server's code is printed), 2 bad usage.
 */
export class CommandUsageError extends Error {}

export type RemoteOptions = { server?: string; token?: string; format?: string; wait?: boolean; interval?: string; status?: string };

type Remote = { server: string; token: string };

/** Where the server is and which token to send (also used by `pds audit verify`). */
export function remoteTarget(config: Config, options: RemoteOptions, role: 'operator' | 'regulator'): Remote {
  const server = (options.server ?? process.env.PDS_SERVER ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`).replace(/\/$/, '');
  let token = options.token ?? process.env.PDS_TOKEN;
  if (!token && config.mode === 'dev') {
    const file = path.join(config.dataDir, 'dev-tokens.json');
    if (fs.existsSync(file)) token = (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>)[role];
  }
  if (!token) throw new CommandUsageError(`${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role} token is needed: --token or PDS_TOKEN (or the dev token in DATA_DIR/dev-tokens.json)`);
  return { server, token };
}

async function call(
  target: Remote,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
  accept = 'application/json',
  retry: { idempotencyKey?: string } = {},
): Promise<{ status: number; json: any; text: string }> {
  let response: Response | undefined;
  // GETs, and POSTs that carry an Idempotency-Key, are safe to send again when the connection fails or a gateway
  // answers 502, 503 or 504 (a server restarting behind it): the server answers a repeated key with what it did
  // the first time.
  const attempts = method === 'GET' || retry.idempotencyKey ? 3 : 1;
  for (let attempt = 1; !response; attempt++) {
    let wait = 500 * attempt;
    try {
      response = await fetch(`${target.server}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${target.token}`,
          accept,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(retry.idempotencyKey ? { 'idempotency-key': retry.idempotencyKey } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      if (gatewayStatuses.has(response.status) && attempt < attempts) {
        wait = gatewayRetryDelayMs(response, wait);
        await response.body?.cancel();
        response = undefined;
      }
    } catch {
      if (attempt >= attempts) throw new AppError('INTERNAL', `no server answers at ${target.server} (start it with pds serve, or pass --server)`);
    }
    if (!response) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const text = await response.text();
  const json = response.headers.get('content-type')?.includes('json') && text ? JSON.parse(text) : undefined;
  if (!response.ok && response.status !== 422) {
    throw new AppError(json?.error?.code ?? 'INTERNAL', json?.error?.message ?? `HTTP ${response.status}`, json?.error?.details ?? []);
  }
  return { status: response.status, json, text };
}

export const jobsUsage = `pds jobs — submit and follow analysis jobs (operators)

  pds jobs check --datasets <a,b> --purpose <text> (--sql <text> | --file <query.sql>) [--model <json>] [privacy]
      the dry run: the policy decision and the output's columns, or the refusal with its code (exit 1);
      reads no data, queues nothing — DuckDB's binding mistakes (BIND_ERROR) show here too. A differentially
      private job also shows its ε against the budget left (exit 1 if the budget does not cover it)
  pds jobs trial --datasets <a,b> --purpose <text> (--sql <text> | --file <query.sql>) [--model <json>]
      decided like check; if accepted, the SQL's output over synthetic rows made from the catalogue, as CSV
      (the first 100 rows; the real data is never read, and the figures say nothing about it)
  pds jobs submit --datasets <a,b> --purpose <text> (--sql <text> | --file <query.sql>) [--model <json>] [--wait]
      submit a job; prints its id (with --wait, follows it like watch). Exit 1 when the policy refuses it.
      Sent with an Idempotency-Key: a dropped connection or a gateway's 502/503/504 is retried without queueing a second job
      (after the gateway's Retry-After, up to 5 s, when it gives one).
  pds jobs watch <id> [--interval <ms>]
      follow a job until it is released, held for review, withheld or failed (exit 0: released or in review)
  pds jobs result <id> [--format csv|json]
      print a released result (json includes the manifest and the signed receipt)
  pds jobs list [--status <status>] [--format csv|json]
      your operator's jobs, newest first (the latest 200): id, status, code, kind, grade, submitted, purpose
  pds jobs show <id>
      one job: its state and why, datasets, purpose, times, and the SQL as submitted
  pds jobs cancel <id>
      cancel a job that is queued or waiting for review (a differentially private job's ε is given back)

  privacy (check, trial, submit): a differentially private job, which L4 and important data require
      --epsilon <ε> [--delta <δ>] [--mechanism laplace|gaussian] [--bounds 'trips: 0..20; fare: 0..5']
      --bounds narrows a registered column's clamp, and is the only clamp a column computed in a CTE, or an
      output summing an expression (sum(fare * 10) AS fare_jiao: 'fare_jiao: 0..30'), has;
      with --model, a differentially private linear model (fitted to noisy sufficient statistics) or logistic
      one (noisy Newton steps from zero; the target is 0 or 1)

  --server <url> (or PDS_SERVER, default the local server)   --token <jwt> (or PDS_TOKEN; dev: dev-tokens.json)`;

export const reportsUsage = `pds reports — reports for regulators

  pds reports products --year <yyyy> [--format csv|json]
      the annual disclosure report of products, calls and fees
  pds reports supervision [--from <iso>] [--to <iso>] [--format csv|json]
      the supervision report per institution (default: this year so far)
  pds reports uses <dataset> [--from <iso>] [--to <iso>] [--format csv|json]
      a dataset's use trail (art. 12; default: the last 30 days): jobs, product calls, channel pulls, exports,
      derived datasets and incidents, a line each with its audit leaves (the source institution's token, the
      data centre's or a regulator's)

  --server <url>   --token <jwt> (or PDS_TOKEN; dev: the regulator token in dev-tokens.json)`;

/** A policy refusal on stderr, exit code 1. Its text is the API's, written for the caller (never a data value). */
function printRefusal(body: { error: { code: string; message: string } }): number {
  const refusal = body.error;
  console.error(`refused: ${refusal.code}: ${refusal.message}`);
  return 1;
}

type JobOptions = { datasets?: string; purpose?: string; sql?: string; file?: string; model?: string; epsilon?: string; delta?: string; mechanism?: string; bounds?: string };

/** A differentially private job's `privacy`, from --epsilon, --delta, --mechanism and --bounds (absent without --epsilon). */
function privacyOptions(options: JobOptions) {
  if (options.epsilon === undefined) {
    if (options.delta !== undefined || options.mechanism !== undefined || options.bounds !== undefined) throw new CommandUsageError('--delta, --mechanism and --bounds go with --epsilon (a differentially private job)');
    return undefined;
  }
  const number = (flag: string, text: string) => {
    // Number('') is 0 and Number('1e-6x') is NaN: only a whole numeric text is taken; the server checks the range.
    if (!/^\s*[0-9.eE+-]+\s*$/.test(text) || !Number.isFinite(Number(text))) throw new CommandUsageError(`${flag} takes a number, e.g. ${flag} 0.5`);
    return Number(text);
  };
  if (options.mechanism !== undefined && options.mechanism !== 'laplace' && options.mechanism !== 'gaussian') throw new CommandUsageError('--mechanism is laplace or gaussian');
  const bounds = options.bounds === undefined ? undefined : readBounds(options.bounds);
  if (bounds && 'problem' in bounds) throw new CommandUsageError(`--bounds takes 'column: min..max; …': ${bounds.problem}`);
  return {
    differentialPrivacy: true,
    epsilon: number('--epsilon', options.epsilon),
    ...(options.delta === undefined ? {} : { delta: number('--delta', options.delta) }),
    ...(options.mechanism === undefined ? {} : { mechanism: options.mechanism }),
    ...(bounds && Object.keys(bounds.bounds).length > 0 ? { bounds: bounds.bounds } : {}),
  };
}

/** The job as `check` and `submit` send it, from the command line's options. */
function jobSubmission(sub: string, options: JobOptions) {
  if (!options.datasets || !options.purpose || (!options.sql && !options.file)) throw new CommandUsageError(`pds jobs ${sub} --datasets <a,b> --purpose <text> (--sql <text> | --file <query.sql>)`);
  const sql = options.sql ?? fs.readFileSync(path.resolve(options.file!), 'utf8');
  let model: unknown;
  if (options.model) {
    try {
      model = JSON.parse(options.model);
    } catch {
      throw new CommandUsageError('--model takes JSON, e.g. {"type":"linear","target":"y","features":["x"]}');
    }
  }
  const privacy = privacyOptions(options);
  return { datasets: options.datasets.split(',').map((name) => name.trim()), sql, purpose: options.purpose, ...(model ? { model } : {}), ...(privacy ? { privacy } : {}) };
}

export async function jobsCommand(config: Config, args: string[], options: RemoteOptions & JobOptions): Promise<number> {
  const [sub, id] = args;
  const target = () => remoteTarget(config, options, 'operator');
  switch (sub) {
    case 'check': {
      const submission = jobSubmission(sub, options);
      const response = await call(target(), 'POST', '/v1/jobs/dry-run', submission);
      if (response.status === 422) return printRefusal(response.json);
      const decision = response.json as {
        kind: string;
        differentialPrivacy: { epsilon: number; delta: number; mechanism: string } | null;
        expectedNoise?: { statistics: Array<{ name: string; ci95HalfWidth: number }>; partitionSelection: { threshold: number } | null; newtonSteps?: number } | null;
        grade: string;
        outputColumns: Array<{ name: string; role: string; hiddenWhenSuppressed?: boolean }>;
        model?: { type: string; target: string; features: string[] };
        policy: { hash: string; minContributors?: number };
      };
      const kind = decision.kind.replace('_', '-');
      // A DP output is not suppressed: the grade's contributor threshold does not apply to it, its noise does.
      const release = decision.differentialPrivacy ? 'noise instead of suppression' : `at least ${decision.policy.minContributors ?? '–'} contributors per cell`;
      console.log(`accepted: ${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} job on ${decision.grade} data (policy ${decision.policy.hash.slice(0, 12)}…, ${release})`);
      if (decision.differentialPrivacy) {
        // What the job would spend, and what the budget has left: the estimate reads no data and spends nothing.
        const estimate = (await call(target(), 'POST', '/v1/jobs/estimate', submission)).json as {
          allowed: boolean;
          code: string | null;
          reason: string | null;
          budget: { dataset: string; epsilonCap: number; epsilonRemaining: number } | null;
        };
        const { epsilon, delta, mechanism } = decision.differentialPrivacy;
        const left = estimate.budget ? `; ${estimate.budget.epsilonRemaining} of ${estimate.budget.epsilonCap} left on ${estimate.budget.dataset}` : '';
        console.log(`  differentially private: ε ${epsilon}, δ ${delta}, ${mechanism}${left}`);
        if (!estimate.allowed) {
          console.error(`refused: ${estimate.code}: ${estimate.reason}`);
          return 1;
        }
        // What that ε buys, known from the plan alone: each figure's noise is within ± this with 95 % probability.
        const noise = decision.expectedNoise;
        if (noise) {
          const steps = noise.newtonSteps ? ` in each of ${noise.newtonSteps} Newton steps` : '';
          console.log(`  expected noise (95 %)${steps}: ${noise.statistics.map((statistic) => `${statistic.name} ±${Number(statistic.ci95HalfWidth.toFixed(3))}`).join(', ')}`);
          if (noise.partitionSelection) console.log(`  keys appear when their noisy count of contributors reaches ${noise.partitionSelection.threshold}`);
        }
      }
      if (decision.model) {
        const fitted = !decision.differentialPrivacy
          ? 'its sufficient statistics are checked as one cell'
          : decision.model.type === 'logistic'
            ? 'fitted by noisy Newton steps from zero'
            : 'fitted to its noisy sufficient statistics';
        console.log(`  ${decision.model.type} regression of ${decision.model.target} on ${decision.model.features.join(', ')}; ${fitted}`);
        return 0;
      }
      for (const column of decision.outputColumns) console.log(`  ${column.name}  ${column.role}${column.hiddenWhenSuppressed ? ' (withheld in suppressed cells)' : ''}`);
      return 0;
    }
    case 'trial': {
      const response = await call(target(), 'POST', '/v1/jobs/trial-run', jobSubmission(sub, options));
      if (response.status === 422) return printRefusal(response.json);
      const trial = response.json as { columns: Array<{ name: string }>; rows: unknown[][]; rowCount: number; rowsPerDataset: number };
      // The note goes to stderr, so that stdout is the CSV alone.
      console.error(`synthetic output: ${trial.rowCount} row(s) over ${trial.rowsPerDataset} synthetic rows a dataset (showing ${trial.rows.length}); it says nothing about the real data`);
      process.stdout.write(toCsv(trial.columns.map((column) => column.name), trial.rows));
      return 0;
    }
    case 'submit': {
      const response = await call(target(), 'POST', '/v1/jobs', jobSubmission(sub, options), 'application/json', { idempotencyKey: crypto.randomUUID() });
      if (response.status === 422) {
        console.log(response.json.job?.id ?? '');
        return printRefusal(response.json);
      }
      console.log(response.json.id);
      return options.wait ? watch(target(), response.json.id, options) : 0;
    }
    case 'watch':
      if (!id) throw new CommandUsageError('pds jobs watch <id>');
      return watch(target(), id, options);
    case 'result': {
      if (!id) throw new CommandUsageError('pds jobs result <id> [--format csv|json]');
      const format = options.format ?? 'csv';
      if (format !== 'csv' && format !== 'json') throw new CommandUsageError('--format is csv or json');
      const response = await call(target(), 'GET', `/v1/jobs/${encodeURIComponent(id)}/result${format === 'csv' ? '?format=csv' : ''}`, undefined, format === 'csv' ? 'text/csv' : 'application/json');
      process.stdout.write(format === 'csv' ? response.text : `${JSON.stringify(response.json, null, 2)}\n`);
      return 0;
    }
    case 'list': {
      const format = options.format ?? 'csv';
      if (format !== 'csv' && format !== 'json') throw new CommandUsageError('--format is csv or json');
      const query = options.status ? `?status=${encodeURIComponent(options.status)}` : '';
      const { jobs } = (await call(target(), 'GET', `/v1/jobs${query}`)).json as { jobs: JobView[] };
      if (format === 'json') process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
      else process.stdout.write(toCsv(['id', 'status', 'code', 'kind', 'grade', 'submitted', 'purpose'], jobs.map((job) => [job.id, job.status, job.code, job.kind, job.grade, job.createdAt, job.purpose])));
      return 0;
    }
    case 'show': {
      if (!id) throw new CommandUsageError('pds jobs show <id>');
      const job = (await call(target(), 'GET', `/v1/jobs/${encodeURIComponent(id)}`)).json as JobView & { sql: string };
      const facts: Array<[string, string | null]> = [
        ['status', `${job.status}${job.stage ? ` (${job.stage})` : ''}`],
        ['code', job.code ? `${job.code}${job.reason ? `: ${job.reason}` : ''}` : null],
        ['kind', job.kind],
        ['privacy', job.differentialPrivacy ? `differentially private: ε ${job.differentialPrivacy.epsilon}, δ ${job.differentialPrivacy.delta}, ${job.differentialPrivacy.mechanism}` : null],
        ['grade', job.grade],
        ['datasets', job.datasets.join(', ')],
        ['purpose', job.purpose],
        ['submitted', job.createdAt],
        ['finished', job.finishedAt],
        ['released', job.releasedAt],
      ];
      for (const [label, value] of facts) if (value) console.log(`${label.padEnd(10)} ${value}`);
      console.log(`\n${job.sql.trimEnd()}`);
      return 0;
    }
    case 'cancel': {
      if (!id) throw new CommandUsageError('pds jobs cancel <id>');
      const job = (await call(target(), 'POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`)).json as JobView;
      console.log(`${job.id} ${job.status}`);
      return 0;
    }
    default:
      throw new CommandUsageError(jobsUsage);
  }
}

/** A job as the API gives it (its JSON: times are already ISO strings). */
type JobView = ReturnType<typeof toJobView>;

const settled = new Set(['released', 'in_review', 'withheld', 'failed', 'rejected', 'cancelled']);
const stageOrder = ['queued', 'running', 'checked', 'in_review', 'released'];

async function watch(target: Remote, id: string, options: RemoteOptions): Promise<number> {
  const interval = Number(options.interval ?? 500);
  if (!Number.isFinite(interval) || interval < 50) throw new CommandUsageError('--interval takes milliseconds, at least 50');
  const bar = progressBar();
  for (;;) {
    const job = (await call(target, 'GET', `/v1/jobs/${encodeURIComponent(id)}`)).json;
    const step = settled.has(job.status) ? stageOrder.length - 1 : Math.max(0, stageOrder.indexOf(job.status));
    bar.update(step, stageOrder.length - 1, `${job.status}${job.stage ? `: ${job.stage}` : ''}`);
    if (settled.has(job.status)) {
      bar.finish(`${id} ${job.status}${job.code ? ` (${job.code})` : ''}${job.reason ? `: ${job.reason}` : ''}`);
      return job.status === 'released' || job.status === 'in_review' ? 0 : 1;
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export async function reportsCommand(config: Config, args: string[], options: RemoteOptions & { year?: string; from?: string; to?: string }): Promise<number> {
  const [sub] = args;
  if (sub === 'supervision') {
    const format = options.format ?? 'csv';
    if (format !== 'csv' && format !== 'json') throw new CommandUsageError('--format is csv or json');
    const query = new URLSearchParams({ format, ...(options.from ? { from: options.from } : {}), ...(options.to ? { to: options.to } : {}) });
    const response = await call(remoteTarget(config, options, 'regulator'), 'GET', `/v1/reports/supervision?${query}`, undefined, format === 'csv' ? 'text/csv' : 'application/json');
    process.stdout.write(format === 'csv' ? response.text : `${JSON.stringify(response.json, null, 2)}\n`);
    return 0;
  }
  if (sub === 'uses') return usesReport(config, args[1], options);
  if (sub !== 'products') throw new CommandUsageError(reportsUsage);
  const year = Number(options.year ?? new Date().getFullYear());
  if (!Number.isInteger(year) || year < 2024 || year > 2100) throw new CommandUsageError('--year takes a year from 2024');
  const format = options.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new CommandUsageError('--format is csv or json');
  const response = await call(remoteTarget(config, options, 'regulator'), 'GET', `/v1/reports/products?year=${year}&format=${format}`, undefined, format === 'csv' ? 'text/csv' : 'application/json');
  process.stdout.write(format === 'csv' ? response.text : `${JSON.stringify(response.json, null, 2)}\n`);
  return 0;
}

/** A dataset's use trail, as the server writes it: CSV (a line per use) or JSON. */
async function usesReport(config: Config, dataset: string | undefined, options: RemoteOptions & { from?: string; to?: string }): Promise<number> {
  if (!dataset) throw new CommandUsageError('pds reports uses <dataset> [--from <iso>] [--to <iso>] [--format csv|json]');
  const format = options.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new CommandUsageError('--format is csv or json');
  const query = new URLSearchParams({ format, ...(options.from ? { from: options.from } : {}), ...(options.to ? { to: options.to } : {}) });
  const response = await call(remoteTarget(config, options, 'regulator'), 'GET', `/v1/datasets/${encodeURIComponent(dataset)}/uses?${query}`, undefined, format === 'csv' ? 'text/csv' : 'application/json');
  process.stdout.write(format === 'csv' ? response.text : `${JSON.stringify(response.json, null, 2)}\n`);
  return 0;
}
