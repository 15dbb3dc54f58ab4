import crypto from 'node:crypto';
import path from 'node:path';
import { inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import { canonicalJson } from '../audit/canonical-json.js';
import type { AnalysisCatalogue } from '../catalog/analysis-catalogue.js';
import type { Database } from '../db/connect.js';
import { createBatchLoader } from '../db/batch-loader.js';
import { activeLicencesOf } from '../authz/entities.js';
import { changedEntriesIn } from '../catalog/analysis-catalogue.js';
import { coverageGaps, type DataUse, type LicenceCover } from '../jobs/licence-coverage.js';
import { licences, operators, products, publicInterestGrants } from '../db/schema.js';
import { recordIncident } from '../governance/incidents.js';
import type { SnapshotStore } from '../domain-store/snapshot-store.js';
import { describeForLog } from '../errors/describe-for-log.js';
import { AppError } from '../errors/app-error.js';
import { safeIssueMessage } from '../errors/validation-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import { signWithPlatformKey, type KeyRing } from '../identity/keys.js';
import { createCallLedger } from './call-ledger.js';
import { createCallReplays, replayRefusals, type EarlierCall, type RetryKey } from './call-replays.js';
import { createBfvContext, fromBase64, toBase64, bfvSettings, type BfvContext } from './client/bfv.js';
import { base64Text, createHeKeyStore, type ResolvedKey } from './he-keys.js';
import { chunkBits, chunksPerClaim, claimChunks, claimDomain, claimPreimage } from './client/claim-encoding.js';
import { loadPricing, type ProductUse } from './pricing.js';
import { createSharedQuotas, type QuotaClaim } from './shared-quotas.js';
import { checksumNames, passesChecksum, productDatasets, type ScoringSpec, type VerificationSpec } from './product-spec.js';
import { createCkksContext, ckksSettings, type CkksContext } from './client/ckks.js';
import { scoringFeatureValues } from './client/scoring-features.js';
import { createSealEvaluator } from './seal-evaluator.js';
import { grantInForce, type PublicInterestGrant } from './public-interest.js';
import type { ProductRow } from './products.js';
import { createQuotaLedger, identifierPosition, isQuotaRefusal } from './quotas.js';
import { createIdempotentCalls } from './idempotent-calls.js';
import { loadSeal } from './seal-loader.js';
import { buildVerificationIndex, isEvaluationFailure, subjectKey, type SubjectRecord, type VerificationIndex } from './verification-index.js';

export const answerType = 'pds-answer+jws';

export const useSchema = z.enum(['public_interest', 'industry']);
const purposeSchema = z.string().min(1).max(500).describe('Why this call is made; recorded with it (measures: use for the stated purpose only)');
const useField = useSchema.default('industry').describe("public_interest (free, needs a regulator's grant) or industry (paid per call, capped)");
export const plainVerificationSchema = z.strictObject({
  input: z.record(z.string(), z.string()).describe("The product's inputs by name (GET /v1/products lists them with an example)"),
  purpose: purposeSchema,
  use: useField,
});
/** The consumer's public key: sent with the call, or registered once (POST /v1/he-keys) and named by its id. */
const keyFields = {
  publicKey: base64Text.optional().describe('The seeded public key, base64; or keyId instead'),
  keyId: z.string().min(1).max(64).optional().describe('The id of a public key registered with POST /v1/he-keys; or publicKey instead'),
};
const oneKey = <T extends { publicKey?: string; keyId?: string }>(body: T) => (body.publicKey === undefined) !== (body.keyId === undefined);
const oneKeyIssue = { message: 'send exactly one of publicKey and keyId', path: ['publicKey'] };
export const encryptedVerificationSchema = z
  .strictObject({
    /** The subject's identifying inputs, in clear: the server must find the record. */
    subject: z.record(z.string(), z.string()),
    ciphertext: base64Text,
    ...keyFields,
    purpose: purposeSchema,
    use: useField,
  })
  .refine(oneKey, oneKeyIssue);

/**
 * 16 fresh random bytes per call, drawn from a pooled buffer refilled every 256 salts (as Node's randomUUID
 * pools its randomness): a randomBytes(16) per call showed up at about 18 µs in bench/products.ts profiles.
 * Every salt is used once and the pool never leaves this function.
 */
const saltPool = Buffer.alloc(4096);
let saltOffset = saltPool.length;
function randomSalt(): string {
  if (saltOffset === saltPool.length) {
    crypto.randomFillSync(saltPool);
    saltOffset = 0;
  }
  saltOffset += 16;
  return saltPool.subarray(saltOffset - 16, saltOffset).toString('base64url');
}

export type VerificationProduct = ProductRow & { spec: VerificationSpec };

/** Verification routes take verification products only; a scoring product is called at /score. */
export function asVerification(product: ProductRow): VerificationProduct {
  if (product.spec.kind !== 'verification') throw new AppError('WRONG_PRODUCT_KIND', 'this is a scoring product: call /score or /score-encrypted');
  return product as VerificationProduct;
}

export const plainScoringSchema = z.strictObject({
  /** A number per feature; a category's value as text (or its 0/1 features). */
  input: z.record(z.string(), z.union([z.number().finite(), z.string().min(1).max(200)])),
  purpose: purposeSchema,
  use: useField,
});
export const encryptedScoringSchema = z.strictObject({ ciphertext: base64Text, ...keyFields, purpose: purposeSchema, use: useField }).refine(oneKey, oneKeyIssue);

export type ScoringProduct = ProductRow & { spec: ScoringSpec };
function asScoring(product: ProductRow): ScoringProduct {
  if (product.spec.kind !== 'scoring') throw new AppError('WRONG_PRODUCT_KIND', 'this is a verification product: call /verify or /verify-encrypted');
  return product as ScoringProduct;
}

type CallMode = 'plain' | 'encrypted' | 'score' | 'score_encrypted';

/** What every answer carries beside its own fields: the signed answer, its audit leaf and the fee charged. */
type Signed = { jws: string; auditLeafIndex: number; feeFen: number };
/** An answer, and whether it is an earlier call's, given again to a retry under the same Idempotency-Key. */
export type Answered<T> = { answer: T; replayed: boolean };

export type AnswerPayload = {
  product: string;
  mode: CallMode;
  match?: boolean;
  score?: number;
  answer_hash?: string;
  model_output_hash?: string;
  request_hash: string;
  request_salt: string;
  dataset_version: string;
  answered_at: string;
  audit_leaf_index: number;
};

/**
 * Answers product calls: quotas first, then the lookup in the product's verification index, then metering and
 * an audit leaf (group-committed), then a signed answer. Everything a call stores about its subject is a keyed
 * hash; the identifier itself lives only for the duration of the call.
 */
export function createProductService(deps: {
  db: Database;
  /** True on PGlite, where one transaction runs at a time (see nextAuditLeaves). */
  exclusiveTransactions: boolean;
  keys: KeyRing;
  clock: () => Date;
  store: SnapshotStore;
  analysisCatalogue: (options?: { maxAgeMilliseconds?: number }) => Promise<AnalysisCatalogue>;
  policiesDir: string;
  /** The data a product reads, which a licence of its operator in force must cover (products.ts, productDataUse). */
  dataUseOf: (spec: ProductRow['spec']) => Promise<DataUse>;
}) {
  const pricing = loadPricing(path.join(deps.policiesDir, 'pricing.yaml'));
  const loadGrant = createBatchLoader<string, PublicInterestGrant>(async (ids) => {
    const rows = await deps.db.select().from(publicInterestGrants).where(inArray(publicInterestGrants.consumerId, ids));
    return new Map(rows.map((row) => [row.consumerId, row]));
  });
  /** A call's stated use sets its fee, so "public_interest" needs a grant in force; checked before any quota. */
  async function requireUse(principal: PrincipalRow, use: ProductUse, now: Date): Promise<void> {
    if (use === 'public_interest' && !grantInForce(await loadGrant(principal.id), now)) {
      throw new AppError('PUBLIC_INTEREST_NOT_GRANTED', 'this consumer has no public-interest grant in force: call with "use": "industry", or ask the regulator for a grant');
    }
  }
  // A product answers only while its operator holds a licence in force that covers the data it reads (measures
  // art. 21): suspending, revoking or letting a licence lapse stops the operator's products at the next call, as it
  // stops its jobs. The licences in force come with the product, in the one query a batch of calls makes for its
  // products (a query of their own cost a fifth of plain verification's throughput); what a product reads is worked
  // out once per process from its definition. "In force" is activeLicencesOf's (authz/entities.ts), in SQL here; the
  // outer column is spelled out: drizzle writes a column of a one-table query unqualified, which in the subquery
  // would name the licence's own operator_id.
  const productsByIds = deps.db
    .select({
      product: products,
      licencesInForce: sql<LicenceCover[]>`(SELECT coalesce(jsonb_agg(jsonb_build_object('scope', l.scope, 'maxGrade', l.max_grade)), '[]'::jsonb)
        FROM ${licences} l JOIN ${operators} o ON o.id = l.operator_id
        WHERE l.operator_id = "products"."operator_id" AND l.status = 'active' AND o.status = 'active'
          AND l.valid_from <= ${sql.placeholder('now')} AND l.valid_until > ${sql.placeholder('now')})`,
    })
    .from(products)
    .where(sql`${products.id} = ANY(${sql.placeholder('ids')})`)
    .prepare('products_by_ids');
  // What a product reads, worked out by the job analyser under this process's disclosure policy and catalogue. A
  // definition the analyser now refuses (a process started with another policy file) answers no calls; the refusal
  // is kept until the product changes, so a caller cannot make every call run the analyser again. Anything else
  // (the control plane unreachable) is tried again on the next call.
  const dataUses = new Map<string, { updatedAt: number; use: Promise<DataUse | AppError> }>();
  function dataUseOf(product: ProductRow): Promise<DataUse | AppError> {
    let known = dataUses.get(product.id);
    if (!known || known.updatedAt !== product.updatedAt.getTime()) {
      const use = deps.dataUseOf(product.spec).catch((error: unknown) => {
        if (error instanceof AppError) return error;
        dataUses.delete(product.id);
        throw error;
      });
      known = { updatedAt: product.updatedAt.getTime(), use };
      dataUses.set(product.id, known);
    }
    return known.use;
  }
  /**
   * Why the product answers no calls now, if it does not: its definition no longer passes the analyser, no licence
   * of its operator in force covers it (a product from loadProduct brings its licences), or its data's catalogue
   * entry is no longer the one its definition was last checked under (a regulator re-checks it by suspending and
   * reinstating it).
   */
  async function whyNotCallable(product: ProductRow & { licencesInForce?: LicenceCover[] }): Promise<string | undefined> {
    const [inForce, use, { datasets: catalogue }] = await Promise.all([
      product.licencesInForce ?? activeLicencesOf(deps.db, product.operatorId, deps.clock()),
      dataUseOf(product),
      // The grades as they are now (a dataset graded up leaves a licence's maximum grade behind), not when the use was worked out.
      deps.analysisCatalogue({ maxAgeMilliseconds: 1000 }),
    ]);
    // Which check refused it is for a regulator to learn by reinstating it, not for a consumer.
    if (use instanceof AppError) return 'its definition does not pass the checks in force; it answers no calls until a regulator re-checks it (suspend, then reinstate)';
    if (!inForce.some((licence) => coverageGaps(licence, { ...use, catalogue }).length === 0)) {
      return "the product's operator holds no licence in force for the data it reads; it answers no calls until one is";
    }
    const changed = changedEntriesIn(catalogue, product.catalogueEntries);
    if (changed.length > 0) {
      return `the catalogue entry of ${changed.join(', ')} changed since the product was approved (grade, open data, privacy unit or column classes); it answers no calls until a regulator re-checks it (suspend, then reinstate)`;
    }
    return undefined;
  }
  const quotas = createQuotaLedger(pricing);
  const sharedQuotas = createSharedQuotas(pricing);
  // Encrypted calls are checked and evaluated off the API thread.
  const sealEvaluator = createSealEvaluator();
  const heKeys = createHeKeyStore({ db: deps.db, clock: deps.clock, sealEvaluator });
  /** The call's public key: the one it carries, or the caller's registered key it names. */
  const keyOf = (principal: PrincipalRow, body: { publicKey?: string; keyId?: string }, scheme: 'bfv' | 'ckks'): Promise<ResolvedKey> | ResolvedKey =>
    body.keyId !== undefined ? heKeys.resolve(principal, body.keyId, scheme) : { bytes: fromBase64(body.publicKey!), sha256: crypto.hash('sha256', body.publicKey!, 'hex') };
  const callReplays = createCallReplays(deps.keys);
  const ledger = createCallLedger(deps.db, deps.clock, { exclusiveTransactions: deps.exclusiveTransactions, sharedQuotas, callReplays, onCounts: quotas.learn, onNotRecorded: quotas.giveBack });
  const subjectSecret = deps.keys.derivedSecret('product subject keys');
  const indexes = new Map<string, { version: string; index: Promise<VerificationIndex> }>();
  const inputValidators = new Map<string, { updatedAt: number; schema: z.ZodType<Record<string, string>> }>();
  // SEAL on this thread only serves the he-params answers; evaluations run in the SEAL thread.
  let bfv: Promise<BfvContext> | undefined;
  let ckks: Promise<CkksContext> | undefined;
  const bfvContext = () => (bfv ??= loadSeal().then(createBfvContext));
  const ckksContext = () => (ckks ??= loadSeal().then(createCkksContext));
  let seeded: Promise<void> | undefined;

  /** This process's counters start from the shared ones, so a restart or a new process does not reset a day. */
  async function seedQuotas(): Promise<void> {
    const now = deps.clock();
    quotas.learn(await sharedQuotas.current(deps.db, now), now);
  }

  async function indexFor(product: VerificationProduct): Promise<VerificationIndex> {
    const { latestVersions } = await deps.analysisCatalogue({ maxAgeMilliseconds: 1000 });
    const version = latestVersions.get(product.spec.dataset);
    if (!version) throw new AppError('PRODUCT_NOT_CALLABLE', 'the product has no data loaded yet');
    const cached = indexes.get(product.id);
    if (cached && cached.version === version) return cached.index;
    const index = buildVerificationIndex({
      productId: product.id,
      spec: product.spec,
      snapshotPath: deps.store.snapshotPath(product.spec.dataset, version),
      datasetVersion: version,
      subjectSecret,
    }).catch((error: unknown) => {
      if (!isEvaluationFailure(error)) throw error;
      // DuckDB's text can quote a value of the data: the log keeps the error's class and frames only.
      console.error(`[pds] product ${product.id} cannot be evaluated over ${product.spec.dataset} version ${version.slice(0, 12)}: ${describeForLog(error)}`);
      throw new AppError('PRODUCT_NOT_CALLABLE', `the product's condition cannot be evaluated over the current data of ${product.spec.dataset} (a value could not be converted or computed); its owner must define it again`);
    });
    indexes.set(product.id, { version, index });
    // A condition that cannot be evaluated over this version stays so (a definition never changes): the refusal is
    // kept with the version, so calls to a broken product do not each build the index again. Other failures are not.
    index.catch((error: unknown) => {
      if (!(error instanceof AppError)) indexes.delete(product.id);
    });
    return index;
  }

  function validateInputs(product: VerificationProduct, values: Record<string, string>, names: string[]): Record<string, string> {
    let validator = inputValidators.get(product.id);
    if (!validator || validator.updatedAt !== product.updatedAt.getTime()) {
      validator = {
        updatedAt: product.updatedAt.getTime(),
        schema: z.strictObject(
          Object.fromEntries(
            product.spec.inputs.map((input) => {
              let field = z.string().min(1).max(input.maxLength);
              if (input.pattern) field = field.regex(new RegExp(`^(?:${input.pattern})$`, 'u'), 'does not have the required form');
              return [input.name, field.optional()];
            }),
          ),
        ) as unknown as z.ZodType<Record<string, string>>,
      };
      inputValidators.set(product.id, validator);
    }
    // Identifiers with a check character are compared upper-cased: a typed x is the same check character as X.
    const checked = product.spec.inputs.filter((input) => input.checksum && typeof values[input.name] === 'string');
    if (checked.length > 0) values = { ...values, ...Object.fromEntries(checked.map((input) => [input.name, values[input.name]!.toUpperCase()])) };
    const parsed = validator.schema.safeParse(values);
    const problems = parsed.success ? [] : parsed.error.issues.map((issue) => ({ path: `input.${issue.path.join('.') || (issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys.join(', ').slice(0, 100) : '')}`, problem: issue.code === 'unrecognized_keys' ? 'unknown input' : safeIssueMessage(issue) }));
    if (parsed.success) {
      for (const input of checked) {
        if (!passesChecksum(input.checksum!, values[input.name]!)) problems.push({ path: `input.${input.name}`, problem: `fails its ${checksumNames[input.checksum!]} check character` });
      }
    }
    for (const name of names) if (values[name] === undefined) problems.push({ path: `input.${name}`, problem: 'is required' });
    if (problems.length > 0) throw new AppError('VALIDATION_FAILED', 'the product input is not valid', problems.slice(0, 20));
    return values;
  }

  /** The quota counters are seeded once per process; a failed seeding is tried again by the next call. */
  const ensureSeeded = () =>
    (seeded ??= seedQuotas().catch((error: unknown) => {
      seeded = undefined;
      throw error;
    }));

  /** Quotas, in the order that reveals nothing: consumer throttle and rates, then the subject's daily limit. */
  async function admit(principal: PrincipalRow, product: VerificationProduct, use: ProductUse, subjectValues: string[], now: Date): Promise<string> {
    await requireUse(principal, use, now);
    await ensureSeeded();
    quotas.admitConsumer(principal.id, now);
    const subject = subjectKey(subjectSecret, subjectValues);
    quotas.admitSubject(subject, product.spec.perSubjectDailyLimit, now);
    return subject;
  }

  /**
   * Records the call and signs its answer: `fields` are the answer's own (a match, a score, a ciphertext). With a
   * retry key, the answer is kept for retries (call-replays.ts), a ciphertext field as its bytes (`binary`); and
   * if the ledger finds the key already answered, that answer is given instead and this call is not counted.
   */
  async function meterAndSign<F extends Record<string, unknown>>(
    principal: PrincipalRow,
    product: ProductRow,
    call: { mode: CallMode; use: ProductUse; purpose: string; subject: string; match: boolean | null; score?: number; answerHash?: string; request: unknown; datasetVersion: string; position: bigint | undefined },
    fields: F,
    now: Date,
    retry: RetryKey | undefined,
    binary?: { field: keyof F & string; bytes: Uint8Array },
  ): Promise<Answered<F & Signed>> {
    // The request hash is salted so that the audit log, which regulators read, does not let anyone test a
    // guess of the identifier and name; the consumer gets the salt in its signed answer and can recompute it.
    const salt = randomSalt();
    const requestHash = crypto.hash('sha256', salt + canonicalJson(call.request as object), 'hex');
    // The shared counters decide the subject's and the product's daily limits and the fee (under the cap).
    const claim: QuotaClaim = {
      consumerId: principal.id,
      productId: product.id,
      use: call.use,
      at: now,
      ...(product.spec.kind === 'verification' ? { subject: { hash: call.subject, dailyLimit: product.spec.perSubjectDailyLimit } } : { productDailyLimit: product.spec.dailyCallsPerConsumer }),
    };
    const unsigned: Omit<AnswerPayload, 'audit_leaf_index'> = {
      product: product.id,
      mode: call.mode,
      ...(call.match === null ? { answer_hash: call.answerHash } : { match: call.match }),
      ...(call.score !== undefined ? { score: call.score } : {}),
      ...(product.spec.kind === 'scoring' ? { model_output_hash: product.spec.model.outputHash } : {}),
      request_hash: requestHash,
      request_salt: salt,
      dataset_version: call.datasetVersion,
      answered_at: now.toISOString(),
    };
    const recorded = await ledger.record({
      call: { id: `call_${crypto.randomUUID()}`, productId: product.id, consumerId: principal.id, mode: call.mode, use: call.use, purpose: call.purpose, subjectHash: call.subject, match: call.match, requestHash, calledAt: now },
      claim,
      event: (feeFen) => ({
        type: 'product.called',
        actor: principal.id,
        operator: product.operatorId,
        datasets: productDatasets(product.spec),
        details: { product: product.id, mode: call.mode, use: call.use, subject: call.subject, request_hash: requestHash, fee_fen: feeFen, ...(call.match === null ? { answer_hash: call.answerHash } : { match: call.match }) },
      }),
      ...(retry ? { retry: { key: retry, sealed: keptAnswer(retry, unsigned, fields, binary) } } : {}),
    });
    // Counted by this process when admitted, but recorded nowhere (the ledger gave the count back): the earlier call was.
    if (recorded.replayOf) return replay<F>(retry!, { ...recorded, sealed: recorded.replayOf.sealed });
    const payload: AnswerPayload = { ...unsigned, audit_leaf_index: recorded.auditIndex };
    const jws = signWithPlatformKey(deps.keys, answerType, payload);
    if (product.spec.kind === 'verification') {
      const finding = quotas.observe(principal.id, { subject: call.subject, match: call.match, position: call.position }, now);
      if (finding) await reportProbing(principal, product, finding, now);
    }
    return { answer: { ...fields, jws, auditLeafIndex: recorded.auditIndex, feeFen: recorded.feeFen }, replayed: false };
  }

  function keptAnswer(retry: RetryKey, payload: Record<string, unknown>, fields: Record<string, unknown>, binary: { field: string; bytes: Uint8Array } | undefined) {
    if (!binary) return callReplays.seal(retry, { payload, fields });
    const { [binary.field]: _inBase64, ...others } = fields;
    return callReplays.seal(retry, { payload, fields: others, binary });
  }

  /** An earlier call's answer, signed again from what was kept: the same payload, so the same JWS. */
  function replay<F>(retry: RetryKey, earlier: Pick<EarlierCall, 'auditIndex' | 'feeFen' | 'sealed'>): Answered<F & Signed> {
    const kept = callReplays.open(retry, earlier.sealed);
    const fields = kept.binary ? { ...kept.fields, [kept.binary.field]: toBase64(kept.binary.bytes) } : kept.fields;
    const jws = signWithPlatformKey(deps.keys, answerType, { ...kept.payload, audit_leaf_index: earlier.auditIndex });
    return { answer: { ...(fields as F), jws, auditLeafIndex: earlier.auditIndex, feeFen: earlier.feeFen }, replayed: true };
  }

  /**
   * A call, except that a retry this process's own counters refuse (the retry of a subject's last check, or of
   * a call answered elsewhere just before a throttle) is answered with the earlier call's answer if one is kept.
   * Only refusals look, so an ordinary call costs no extra read.
   */
  async function answerOnce<F>(retry: RetryKey | undefined, answer: () => Promise<Answered<F & Signed>>): Promise<Answered<F & Signed>> {
    try {
      return await answer();
    } catch (error) {
      // A retry of an already answered call must not get a refusal of this process's own counters.
      if (!retry || !isQuotaRefusal(error)) throw error;
      const earlier = await callReplays.find(deps.db, retry, deps.clock());
      if (!earlier) throw error;
      if (earlier.requestHash !== retry.requestHash) throw replayRefusals.keyReused();
      return replay<F>(retry, earlier);
    }
  }

  /** An incident for the regulator, and the throttle for every API process, not only the one that saw it. */
  async function reportProbing(principal: PrincipalRow, product: ProductRow, finding: { kind: 'probing' | 'enumeration'; detail: Record<string, unknown> }, now: Date) {
    const detail = { ...finding.detail, product: product.id, throttledMinutes: pricing.probing.throttleMinutes };
    await deps.db.transaction(async (tx) => {
      await recordIncident(tx as never, { kind: finding.kind, principalId: principal.id, detail: { ...detail, ...('dataset' in product.spec ? { datasets: [product.spec.dataset] } : {}) } }, now);
      await sharedQuotas.throttle(tx, principal.id, new Date(now.getTime() + pricing.probing.throttleMinutes * 60_000));
    });
  }

  const claimDigestOf = (product: ProductRow, input: string, value: string) => crypto.hash('sha256', claimPreimage(product.id, input, value), 'buffer');
  const dummyRecord = (count: number): SubjectRecord => ({ digests: Array.from({ length: count }, () => crypto.randomBytes(32)), meetsCondition: false });

  /** Scoring calls: the consumer's daily limit on this product, after the consumer-wide quotas. */
  async function admitScoring(principal: PrincipalRow, product: ScoringProduct, use: ProductUse, now: Date): Promise<void> {
    await requireUse(principal, use, now);
    await ensureSeeded();
    quotas.admitConsumer(principal.id, now);
    quotas.admitProductDaily(principal.id, product.id, product.spec.dailyCallsPerConsumer, now);
  }

  return {
    /**
     * Builds a verification product's index ahead of its first call, so that a product whose condition cannot be
     * evaluated over its data is refused publication (PRODUCT_NOT_CALLABLE) instead of failing every consumer.
     */
    async prepare(row: ProductRow): Promise<void> {
      if (row.spec.kind !== 'verification') return;
      await indexFor(asVerification(row));
    },
    pricing,
    ledger,
    quotas,
    sealEvaluator,
    heKeys,
    callReplays,
    idempotentCalls: createIdempotentCalls({ clock: deps.clock, retryKey: callReplays.retryKey }),

    scorePlain: (principal: PrincipalRow, row: ProductRow, body: z.infer<typeof plainScoringSchema>, retry?: RetryKey) => answerOnce(retry, async () => {
      const product = asScoring(row);
      const now = deps.clock();
      const { model, features: described } = product.spec;
      const { values, problems } = scoringFeatureValues(model.features, model.categories ?? {}, body.input);
      model.features.forEach((name, index) => {
        const range = described.find((feature) => feature.name === name);
        const value = values[index]!;
        if ((range?.min !== undefined && value < range.min) || (range?.max !== undefined && value > range.max)) problems.push({ path: `input.${name}`, problem: 'is outside the range the product accepts' });
      });
      if (problems.length > 0) throw new AppError('VALIDATION_FAILED', 'the features are not valid', problems.slice(0, 20));
      await admitScoring(principal, product, body.use, now);
      const linearPredictor = model.coefficients[0]! + values.reduce((sum, value, index) => sum + model.coefficients[index + 1]! * value, 0);
      const score = model.type === 'logistic' ? 1 / (1 + Math.exp(-linearPredictor)) : linearPredictor;
      // The subject is the point scored, however its categories were written: the daily limit counts points.
      const subject = subjectKey(subjectSecret, values.map(String));
      return meterAndSign(principal, product, { mode: 'score', use: body.use, purpose: body.purpose, subject, match: null, score, answerHash: crypto.hash('sha256', String(score), 'hex'), request: { product: product.id, input: body.input, purpose: body.purpose, use: body.use }, datasetVersion: model.outputHash, position: undefined }, { score, linearPredictor }, now, retry);
    }),

    async scoringHeParameters(row: ProductRow) {
      const product = asScoring(row);
      const context = await ckksContext();
      return {
        scheme: 'ckks' as const,
        library: 'node-seal 6 (Microsoft SEAL 4)',
        polyModulusDegree: ckksSettings.polyModulusDegree,
        coeffModulusBits: [...ckksSettings.coeffModulusBits],
        scale: context.scale,
        securityLevel: 128,
        parameters: toBase64(context.parameters),
        ciphertextBytes: context.seededCiphertextBytes,
        publicKeyBytes: context.seededPublicKeyBytes,
        features: product.spec.model.features,
        ...(product.spec.model.categories ? { categories: product.spec.model.categories } : {}),
        layout: 'feature i (1-based, in the order of `features`) in slot i; slot 0 and the rest zero; sum slots 0..p of the answer for the linear predictor',
        link: product.spec.model.type === 'logistic' ? 'logistic: score = 1 / (1 + exp(−linear predictor))' : 'identity',
        serialization: 'seeded, uncompressed (ComprModeType.none), base64',
      };
    },

    scoreEncrypted: (principal: PrincipalRow, row: ProductRow, body: z.infer<typeof encryptedScoringSchema>, retry?: RetryKey) => answerOnce(retry, async () => {
      const product = asScoring(row);
      const now = deps.clock();
      // Parameters and sizes are checked (in the SEAL thread) before quotas are spent.
      const key = await keyOf(principal, body, 'ckks');
      const checked = await sealEvaluator.check('ckks', { ciphertext: fromBase64(body.ciphertext), publicKey: key.bytes });
      try {
        await admitScoring(principal, product, body.use, now);
      } catch (error) {
        sealEvaluator.discard(checked);
        throw error;
      }
      const answer = await sealEvaluator.score(checked, product.spec.model.coefficients);
      const answerHash = crypto.hash('sha256', answer, 'hex');
      const ciphertextHash = crypto.hash('sha256', body.ciphertext, 'hex');
      const request = { product: product.id, ciphertext_sha256: ciphertextHash, public_key_sha256: key.sha256, purpose: body.purpose, use: body.use };
      return meterAndSign(principal, product, { mode: 'score_encrypted', use: body.use, purpose: body.purpose, subject: ciphertextHash.slice(0, 32), match: null, answerHash, request, datasetVersion: product.spec.model.outputHash, position: undefined }, { answer: toBase64(answer) }, now, retry, { field: 'answer', bytes: answer });
    }),
    whyNotCallable,

    /**
     * The keyed subject hash a call to this verification product would be metered under, from its subject inputs
     * validated and normalised as a call's are (subject access requests look calls up by it).
     */
    subjectOf(row: ProductRow, input: Record<string, string>): string {
      const product = asVerification(row);
      const names = product.spec.subject.map((binding) => binding.input);
      const validated = validateInputs(product, input, names);
      return subjectKey(subjectSecret, names.map((name) => validated[name]!));
    },

    /** Refuses a call to a product that answers none now (whyNotCallable). */
    async requireCallable(product: ProductRow): Promise<void> {
      const reason = await whyNotCallable(product);
      if (reason) throw new AppError('PRODUCT_NOT_CALLABLE', reason);
    },

    /** A product as the database holds it now, with its operator's licences in force; concurrent calls share one query. */
    loadProduct: createBatchLoader<string, ProductRow & { licencesInForce: LicenceCover[] }>(async (ids) => {
      const rows = await productsByIds.execute({ ids, now: deps.clock() });
      return new Map(rows.map((row) => [row.product.id, { ...row.product, licencesInForce: row.licencesInForce }]));
    }),

    verifyPlain: (principal: PrincipalRow, row: ProductRow, body: z.infer<typeof plainVerificationSchema>, retry?: RetryKey) => answerOnce(retry, async () => {
      const product = asVerification(row);
      const now = deps.clock();
      const spec = product.spec;
      const input = validateInputs(product, body.input, spec.inputs.map((entry) => entry.name));
      const subjectValues = spec.subject.map((binding) => input[binding.input]!);
      const subject = await admit(principal, product, body.use, subjectValues, now);
      const index = await indexFor(product);
      const found = index.subjects.get(subject);
      // The same comparisons run whether or not the subject exists, so timing does not tell them apart.
      const record = found ?? dummyRecord(spec.claims.length);
      let claimsMatch = true;
      for (const [position, claim] of spec.claims.entries()) {
        claimsMatch = crypto.timingSafeEqual(claimDigestOf(product, claim.input, input[claim.input]!), record.digests[position]!) && claimsMatch;
      }
      const match = found !== undefined && claimsMatch && record.meetsCondition;
      return meterAndSign(principal, product, { mode: 'plain', use: body.use, purpose: body.purpose, subject, match, request: { product: product.id, input, purpose: body.purpose, use: body.use }, datasetVersion: index.datasetVersion, position: identifierPosition(subjectValues[0]!) }, { match }, now, retry);
    }),

    async heParameters(row: ProductRow) {
      const product = asVerification(row);
      if (product.spec.claims.length === 0) throw new AppError('ENCRYPTED_MODE_UNAVAILABLE', 'this product has no claims to encrypt: it answers a condition about the subject alone');
      const context = await bfvContext();
      return {
        scheme: 'bfv' as const,
        library: 'node-seal 6 (Microsoft SEAL 4)',
        polyModulusDegree: bfvSettings.polyModulusDegree,
        plainModulus: context.plainModulus.toString(),
        coeffModulusBits: context.dataModuli.map((modulus: bigint) => modulus.toString(2).length),
        securityLevel: 128,
        parameters: toBase64(context.parameters),
        ciphertextBytes: context.seededCiphertextBytes,
        publicKeyBytes: context.seededPublicKeyBytes,
        encoding: {
          digest: 'SHA-256' as const,
          domain: claimDomain,
          chunkBits,
          chunksPerClaim,
          layout: 'claim i, chunk k at coefficient i·chunksPerClaim + k; all other coefficients zero',
          serialization: 'seeded, uncompressed (ComprModeType.none), base64',
        },
        subjectInputs: product.spec.subject.map((binding) => binding.input),
        claimInputs: product.spec.claims.map((binding) => binding.input),
      };
    },

    verifyEncrypted: (principal: PrincipalRow, row: ProductRow, body: z.infer<typeof encryptedVerificationSchema>, retry?: RetryKey) => answerOnce(retry, async () => {
      const product = asVerification(row);
      const now = deps.clock();
      const spec = product.spec;
      if (spec.claims.length === 0) throw new AppError('ENCRYPTED_MODE_UNAVAILABLE', 'this product has no claims to encrypt');
      const subjectInputs = spec.subject.map((binding) => binding.input);
      const subjectOnly = validateInputs(product, body.subject, subjectInputs);
      for (const name of Object.keys(subjectOnly)) {
        if (!subjectInputs.includes(name)) throw new AppError('VALIDATION_FAILED', 'only the subject travels in clear; claims go in the ciphertext', [{ path: `subject.${name.slice(0, 63)}`, problem: 'is a claim' }]);
      }
      // Parameters and sizes are checked (in the SEAL thread) before quotas are spent or any record is read.
      const key = await keyOf(principal, body, 'bfv');
      const checked = await sealEvaluator.check('bfv', { ciphertext: fromBase64(body.ciphertext), publicKey: key.bytes });
      let actual: bigint[] | undefined;
      let subject: string;
      let datasetVersion: string;
      const subjectValues = spec.subject.map((binding) => subjectOnly[binding.input]!);
      try {
        subject = await admit(principal, product, body.use, subjectValues, now);
        const index = await indexFor(product);
        datasetVersion = index.datasetVersion;
        const found = index.subjects.get(subject);
        actual = found && found.meetsCondition ? found.digests.flatMap((digest) => claimChunks(digest)) : undefined;
      } catch (error) {
        sealEvaluator.discard(checked);
        throw error;
      }
      // The evaluation frees the checked upload, whatever happens.
      const answer = await sealEvaluator.verify(checked, actual, spec.claims.length * chunksPerClaim);
      const answerHash = crypto.hash('sha256', answer, 'hex');
      const request = { product: product.id, subject: subjectOnly, ciphertext_sha256: crypto.hash('sha256', body.ciphertext, 'hex'), public_key_sha256: key.sha256, purpose: body.purpose, use: body.use };
      return meterAndSign(principal, product, { mode: 'encrypted', use: body.use, purpose: body.purpose, subject, match: null, answerHash, request, datasetVersion, position: identifierPosition(subjectValues[0]!) }, { answer: toBase64(answer) }, now, retry, { field: 'answer', bytes: answer });
    }),
  };
}

export type ProductService = ReturnType<typeof createProductService>;
