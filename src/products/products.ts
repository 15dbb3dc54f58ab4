import { issueDetails } from '../errors/validation-error.js';
import { asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { analyseQuery, QueryRejected, type SourceColumn } from '../analysis/analyse-query.js';
import { appendAuditEvents } from '../audit/audit-log.js';
import { analysedEntryHash } from '../catalog/analysis-catalogue.js';
import { entityRef, type CedarEntity } from '../authz/policy-engine.js';
import { sqlIdentifier } from '../duckdb/sql-literals.js';
import { products } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import { activeLicencesOf } from '../authz/entities.js';
import { licenceCovering, type DataUse } from '../jobs/licence-coverage.js';
import type { Platform } from '../platform.js';
import { categoryValues, scoringInputNames, type ScoringCategories } from './client/scoring-features.js';
import { listPriceFen, type Pricing } from './pricing.js';
import { jobs } from '../db/schema.js';
import { checksumNames, productDatasets, productDefinitionSchema, specProblems, type ProductDefinition, type ProductSpec, type ScoringDefinition, type ScoringSpec, type VerificationSpec } from './product-spec.js';

export type ProductRow = typeof products.$inferSelect;
export type ProductStatus = ProductRow['status'];

export const productEntity = (product: Pick<ProductRow, 'id' | 'operatorId' | 'status'>): CedarEntity => ({
  uid: { type: 'Product', id: product.id },
  attrs: { operator: entityRef('Operator', product.operatorId), status: product.status },
  parents: [],
});

export const productDecisionSchema = z.strictObject({
  decision: z.enum(['approve', 'reject', 'suspend', 'reinstate', 'retire']),
  reason: z.string().min(1).max(2000),
});
export const productPublicationSchema = z.strictObject({ action: z.enum(['publish', 'withdraw']) });

// Who moves a product where (DESIGN section 5). Retired is final: a changed product is a new definition.
const regulatorMoves: Record<z.infer<typeof productDecisionSchema>['decision'], { from: ProductStatus[]; to: ProductStatus }> = {
  approve: { from: ['draft'], to: 'approved' },
  reject: { from: ['draft'], to: 'retired' },
  suspend: { from: ['approved', 'published'], to: 'suspended' },
  reinstate: { from: ['suspended'], to: 'approved' },
  retire: { from: ['draft', 'approved', 'published', 'suspended'], to: 'retired' },
};
const ownerMoves: Record<z.infer<typeof productPublicationSchema>['action'], { from: ProductStatus[]; to: ProductStatus }> = {
  publish: { from: ['approved'], to: 'published' },
  withdraw: { from: ['published'], to: 'approved' },
};

/**
 * Checks a definition against the catalogue, the operator's licence and the job analyser, then stores it as a
 * draft for a regulator. Nothing here reads data.
 */
export async function defineProduct(platform: Platform, principal: PrincipalRow, input: unknown): Promise<ProductRow> {
  if (!principal.operatorId) throw new AppError('FORBIDDEN', 'only operator analysts define products');
  const parsed = productDefinitionSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError('VALIDATION_FAILED', 'the product definition is not valid', issueDetails(parsed.error));
  }
  const definition = parsed.data;
  const { spec, catalogueEntries } =
    definition.spec.kind === 'scoring'
      ? { spec: await checkScoringSpec(platform, principal, definition.spec), catalogueEntries: null }
      : await checkVerificationSpec(platform, { id: principal.id, operatorId: principal.operatorId }, definition.spec, { licence: true });
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    // The insert itself decides: a read first would let two concurrent definitions of one id both pass it.
    const [row] = await tx
      .insert(products)
      .values({ id: definition.id, operatorId: principal.operatorId!, kind: spec.kind, title: definition.title, titleZh: definition.titleZh, terms: definition.terms, spec, catalogueEntries, status: 'draft', createdBy: principal.id, createdAt: now, updatedAt: now })
      .onConflictDoNothing()
      .returning();
    if (!row) throw new AppError('CONFLICT', `a product with id ${definition.id} exists`);
    await appendAuditEvents(tx, [{ type: 'product.defined', actor: principal.id, operator: principal.operatorId, datasets: productDatasets(spec), details: { product: definition.id, kind: spec.kind } }], now);
    return row;
  });
}

/** A scoring product serves one released model job of the same operator. */
async function checkScoringSpec(platform: Platform, principal: PrincipalRow, spec: ScoringDefinition): Promise<ScoringSpec> {
  const [job] = await platform.db.select().from(jobs).where(eq(jobs.id, spec.job));
  // Another operator's job is "not found", as everywhere.
  if (!job || job.operatorId !== principal.operatorId) throw new AppError('PRODUCT_SPEC_INVALID', 'the model job was not found among this operator\'s jobs');
  const plan = job.plan as { kind?: string; model?: { type: 'linear' | 'logistic'; target: string; features: string[]; categoryColumns?: ScoringCategories } } | null;
  // A differentially private model (plan kind dp_aggregate with a model) serves the same way: its scores
  // are computed from released coefficients, which costs no further privacy.
  if (job.kind !== 'model' || (plan?.kind !== 'model' && plan?.kind !== 'dp_aggregate') || !plan.model) throw new AppError('PRODUCT_SPEC_INVALID', 'the job is not a model job');
  if (job.status !== 'released') throw new AppError('PRODUCT_SPEC_INVALID', 'only a released model can be served');
  const output = job.output as { rows: Array<[string, number, number]> };
  const coefficients = output.rows.map((row) => Number(row[1]));
  const features = plan.model.features;
  const categories = plan.model.categoryColumns ?? {};
  for (const described of spec.features) {
    if (described.name in categories) {
      // A category is sent by its value: a range means nothing for it.
      if (described.min !== undefined || described.max !== undefined) throw new AppError('PRODUCT_SPEC_INVALID', `${described.name} is a category: it takes one of its values, not a range`);
    } else if (!features.includes(described.name)) throw new AppError('PRODUCT_SPEC_INVALID', `the model has no feature ${described.name}`);
  }
  const model = { type: plan.model.type, target: plan.model.target, features, coefficients, datasets: job.datasets, outputHash: (job.manifest as { contentHash: string }).contentHash };
  return { ...spec, model: Object.keys(categories).length > 0 ? { ...model, categories } : model };
}

/**
 * The checks of a verification definition against the catalogue as it is now; with `licence`, also against the
 * operator's licences (an over-scope definition is an incident). Answers the entries it was checked under.
 */
async function checkVerificationSpec(
  platform: Platform,
  definer: { id: string; operatorId: string | null },
  spec: VerificationSpec,
  options: { licence: boolean },
): Promise<{ spec: VerificationSpec; catalogueEntries: Record<string, string> }> {
  const problems = specProblems(spec);
  const { datasets: catalogue, latestVersions } = await platform.analysisCatalogue();
  const dataset = catalogue.get(spec.dataset);
  if (!dataset) throw new AppError('PRODUCT_SPEC_INVALID', `${spec.dataset} is not a dataset in the catalogue`);
  if (!latestVersions.has(spec.dataset)) problems.push(`${spec.dataset} has no loaded version yet`);
  const columns = new Map(dataset.columns.map((column) => [column.name, column]));
  const bound = [...spec.subject, ...spec.claims];
  for (const binding of bound) if (!columns.has(binding.column)) problems.push(`${spec.dataset} has no column ${binding.column}`);
  if (spec.claims.length > 0) {
    // A claim is compared with one record: the subject must be the dataset's unique key.
    const key = new Set(dataset.uniqueKey ?? []);
    const subject = new Set(spec.subject.map((binding) => binding.column));
    if (key.size === 0 || key.size !== subject.size || ![...key].every((column) => subject.has(column))) {
      problems.push(`with claims, the subject must be the unique key of ${spec.dataset} (${[...key].join(', ') || 'none registered'})`);
    }
  }
  const recent = spec.condition?.recentMonths && columns.get(spec.condition.recentMonths.column);
  if (spec.condition?.recentMonths && !recent) problems.push(`${spec.dataset} has no column ${spec.condition.recentMonths.column}`);
  // The months are counted back from the column's latest value: only a date or a timestamp has months.
  if (recent && !/^(DATE|TIMESTAMP)/.test(recent.type ?? '')) problems.push(`condition.recentMonths.column must be a DATE or TIMESTAMP column; ${recent.name} is ${recent.type}`);
  if (problems.length > 0) throw new AppError('PRODUCT_SPEC_INVALID', 'the product definition cannot be used', problems.map((problem) => ({ problem })));

  const conditionColumns = spec.condition ? await analyseCondition(platform, spec, catalogue) : [];
  const columnsUsed = verificationColumnsUsed(spec, columns, conditionColumns);
  if (options.licence) await licenceCovering(platform.db, { operatorId: definer.operatorId!, principalId: definer.id, datasets: [spec.dataset], columnsUsed, catalogue }, platform.clock());
  return { spec, catalogueEntries: { [spec.dataset]: analysedEntryHash(dataset) } };
}

/** The columns a verification product reads: those its inputs are bound to, its condition's, its months column. */
function verificationColumnsUsed(spec: VerificationSpec, columns: Map<string, { class: SourceColumn['class'] }>, conditionColumns: SourceColumn[]): SourceColumn[] {
  const named = [...spec.subject, ...spec.claims].map((binding) => binding.column);
  if (spec.condition?.recentMonths) named.push(spec.condition.recentMonths.column);
  // A column the catalogue no longer lists is still named (it is what the licence must cover); its class is unknown.
  return [...named.map((column) => ({ dataset: spec.dataset, column, class: columns.get(column)?.class ?? 'sensitive' })), ...conditionColumns];
}

/**
 * The data a product reads to answer, which a licence of its operator in force must cover for as long as it serves
 * (measures art. 21: a product is made under a licence). A scoring product is held to its model's datasets and their
 * grades; its model job was checked column by column when it ran.
 */
export async function productDataUse(platform: Pick<Platform, 'analysisCatalogue' | 'parser' | 'disclosurePolicy'>, spec: ProductSpec): Promise<DataUse> {
  const { datasets: catalogue } = await platform.analysisCatalogue();
  if (spec.kind === 'scoring') return { datasets: spec.model.datasets, columnsUsed: [], catalogue };
  const columns = new Map((catalogue.get(spec.dataset)?.columns ?? []).map((column) => [column.name, column]));
  const conditionColumns = spec.condition ? await conditionColumnsUsed(platform, spec, catalogue) : [];
  return { datasets: [spec.dataset], columnsUsed: verificationColumnsUsed(spec, columns, conditionColumns), catalogue };
}

/**
 * The condition is checked as the job `SELECT bool_and(require), count(*) FROM dataset WHERE rows` would be;
 * each expression must also parse on its own as exactly one expression, so its text cannot reshape the
 * statements the server later builds around it.
 */
async function analyseCondition(platform: Platform, spec: VerificationSpec, catalogue: Awaited<ReturnType<Platform['analysisCatalogue']>>['datasets']): Promise<SourceColumn[]> {
  const condition = spec.condition!;
  const table = sqlIdentifier(spec.dataset);
  for (const [label, expression] of [['require', condition.require], ['rows', condition.rows]] as const) {
    if (expression === undefined) continue;
    const alone = await platform.parser.parse(`SELECT (${expression}) AS e FROM ${table}`);
    const node = alone.ok && alone.statements.length === 1 ? alone.statements[0]!.node : undefined;
    const single = node && node.type === 'SELECT_NODE' && node.select_list?.length === 1 && node.from_table?.type === 'BASE_TABLE' && !node.where_clause && (node.groups?.group_expressions?.length ?? 0) === 0 && !node.having && (node.modifiers?.length ?? 0) === 0 && Object.keys(node.cte_map?.map ?? {}).length === 0;
    if (!single) throw new AppError('PRODUCT_SPEC_INVALID', `condition.${label} must be one SQL expression over ${spec.dataset}`);
  }
  const columnsUsed = await conditionColumnsUsed(platform, spec, catalogue);
  // A condition DuckDB cannot bind (bool_and of text) would otherwise be approved, published and fail on every call.
  await platform.bindCheck.confirm(catalogue, conditionQuery(spec), undefined, 'the condition');
  return columnsUsed;
}

const conditionQuery = (spec: VerificationSpec) =>
  `SELECT bool_and(${spec.condition!.require}) AS meets, count(*) AS n FROM ${sqlIdentifier(spec.dataset)}${spec.condition!.rows ? ` WHERE ${spec.condition!.rows}` : ''}`;

/** The columns the condition reads, as the job analyser resolves them (which also refuses what a job could not do). */
async function conditionColumnsUsed(platform: Pick<Platform, 'parser' | 'disclosurePolicy'>, spec: VerificationSpec, catalogue: Awaited<ReturnType<Platform['analysisCatalogue']>>['datasets']): Promise<SourceColumn[]> {
  const parsed = await platform.parser.parse(conditionQuery(spec));
  if (!parsed.ok) throw new AppError('PARSE_ERROR', `the condition does not parse: ${parsed.message}`);
  try {
    return analyseQuery(parsed.statements, { catalogue, requested: [spec.dataset], policy: platform.disclosurePolicy }).columnsUsed;
  } catch (error) {
    if (error instanceof QueryRejected) throw new AppError(error.code, `the condition was refused by the job analyser: ${error.reason}`);
    throw error;
  }
}

export async function findProduct(platform: Platform, id: string): Promise<ProductRow | undefined> {
  const [row] = await platform.db.select().from(products).where(eq(products.id, id));
  return row;
}

/** Loads a product the principal may act on; others' products are "not found" (their ids stay private). */
export async function productFor(platform: Platform, principal: PrincipalRow, id: string, action: string): Promise<ProductRow> {
  const product = await platform.products.loadProduct(id);
  if (!product) throw notFound('product');
  await platform.authorizer.require(principal, action, productEntity(product), { hideExistence: true });
  if (action === 'product:call') await platform.products.requireCallable(product);
  return product;
}

export async function decideProduct(platform: Platform, principal: PrincipalRow, product: ProductRow, input: z.infer<typeof productDecisionSchema>): Promise<ProductRow> {
  // What a regulator approves (or reinstates) is the definition checked against the catalogue as it is at that
  // moment; the product then answers only while its data's entry stays so (product-service.ts, whyNotCallable).
  // The operator's licences are checked at every call, and an approval is no over-scope attempt of the operator's.
  const checkedNow =
    (input.decision === 'approve' || input.decision === 'reinstate') && product.spec.kind === 'verification'
      ? (await checkVerificationSpec(platform, { id: product.createdBy, operatorId: product.operatorId }, product.spec, { licence: false })).catalogueEntries
      : undefined;
  return moveProduct(platform, principal, product, regulatorMoves[input.decision], `product.${input.decision}`, input.reason, checkedNow ? { catalogueEntries: checkedNow } : {});
}

export async function publishProduct(platform: Platform, principal: PrincipalRow, product: ProductRow, input: z.infer<typeof productPublicationSchema>): Promise<ProductRow> {
  if (input.action === 'publish' && product.status === 'approved') await platform.products.prepare(product);
  return moveProduct(platform, principal, product, ownerMoves[input.action], `product.${input.action}`, null);
}

async function moveProduct(
  platform: Platform,
  principal: PrincipalRow,
  product: ProductRow,
  move: { from: ProductStatus[]; to: ProductStatus },
  event: string,
  reason: string | null,
  recorded: Partial<Pick<ProductRow, 'catalogueEntries'>> = {},
): Promise<ProductRow> {
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    const [current] = await tx.select().from(products).where(eq(products.id, product.id)).for('update');
    if (!current || !move.from.includes(current.status)) {
      throw new AppError('INVALID_TRANSITION', `a ${current?.status ?? 'missing'} product cannot become ${move.to}`);
    }
    const [row] = await tx
      .update(products)
      .set({ status: move.to, updatedAt: now, ...recorded, ...(reason ? { decidedBy: principal.id, decisionReason: reason } : {}) })
      .where(eq(products.id, product.id))
      .returning();
    await appendAuditEvents(tx, [{ type: event, actor: principal.id, operator: current.operatorId, datasets: productDatasets(current.spec), details: { product: current.id, from: current.status, to: move.to, ...(reason ? { reason } : {}) } }], now);
    return row!;
  });
}

/** Regulators see every product, an operator its own and those others serve, a consumer those it can call. */
export async function listProducts(platform: Platform, principal: PrincipalRow): Promise<ProductRow[]> {
  const rows = await platform.db.select().from(products).orderBy(asc(products.id));
  if (principal.role === 'regulator') return rows;
  const own = (row: ProductRow) => principal.role === 'operator' && row.operatorId === principal.operatorId;
  const published = rows.filter((row) => row.status === 'published' && !own(row));
  // A published product that answers no calls (its operator's licence lapsed, its data's entry changed) is not
  // offered. Each operator's licences are read once, however many products it has.
  const now = platform.clock();
  const operatorIds = [...new Set(published.map((row) => row.operatorId))];
  const inForce = new Map(await Promise.all(operatorIds.map(async (id) => [id, await activeLicencesOf(platform.db, id, now)] as const)));
  const unanswered = await Promise.all(published.map((row) => platform.products.whyNotCallable({ ...row, licencesInForce: inForce.get(row.operatorId)! })));
  const offered = new Set(published.filter((_, index) => unanswered[index] === undefined));
  return rows.filter((row) => own(row) || offered.has(row));
}

/** What a consumer needs to call a product: inputs with their rules and an example, price, terms, modes. */
export function toProductView(product: ProductRow, pricing: Pricing) {
  const common = {
    id: product.id,
    kind: product.kind,
    title: product.title,
    titleZh: product.titleZh,
    status: product.status,
    operator: product.operatorId,
    terms: product.terms,
    price: { currency: 'CNY', publicInterestFen: listPriceFen(pricing, product.id, 'public_interest'), industryFen: listPriceFen(pricing, product.id, 'industry'), monthlyCapFen: pricing.fees.monthlyCapFen },
    updatedAt: product.updatedAt.toISOString(),
  };
  const spec = product.spec;
  if (spec.kind === 'scoring') {
    const described = new Map(spec.features.map((feature) => [feature.name, feature]));
    const categories = spec.model.categories ?? {};
    const descriptionOf = (name: string) => (described.get(name)?.description ? { description: described.get(name)!.description } : {});
    // A category is one input taking one of its values (its 0/1 features are accepted too, but not advertised).
    const inputs = scoringInputNames(spec.model.features, categories);
    const property = (name: string) => {
      const category = categories[name];
      if (category) return { type: 'string' as const, enum: categoryValues(category), ...descriptionOf(name) };
      const feature = described.get(name);
      return { type: 'number' as const, ...descriptionOf(name), ...(feature?.min !== undefined ? { minimum: feature.min } : {}), ...(feature?.max !== undefined ? { maximum: feature.max } : {}) };
    };
    return {
      ...common,
      datasets: spec.model.datasets,
      model: {
        type: spec.model.type,
        target: spec.model.target,
        job: spec.job,
        outputHash: spec.model.outputHash,
        score: spec.model.type === 'logistic' ? 'probability (the logistic of the linear predictor)' : 'linear predictor',
        ...(Object.keys(categories).length > 0 ? { categories } : {}),
      },
      inputSchema: {
        type: 'object' as const,
        additionalProperties: false,
        required: inputs,
        properties: Object.fromEntries(inputs.map((name) => [name, property(name)])),
      },
      example: Object.fromEntries(inputs.map((name) => [name, categories[name]?.baseline ?? described.get(name)?.min ?? 1])),
      modes: ['plain', 'encrypted'],
      dailyCallsPerConsumer: spec.dailyCallsPerConsumer,
    };
  }
  return {
    ...common,
    dataset: spec.dataset,
    inputSchema: {
      type: 'object' as const,
      additionalProperties: false,
      required: spec.inputs.map((input) => input.name),
      properties: Object.fromEntries(
        spec.inputs.map((input) => [
          input.name,
          { type: 'string' as const, description: input.description, ...(input.descriptionZh ? { 'x-description-zh': input.descriptionZh } : {}), maxLength: input.maxLength, ...(input.pattern ? { pattern: `^(?:${input.pattern})$` } : {}), ...(input.checksum ? { 'x-check-character': checksumNames[input.checksum] } : {}) },
        ]),
      ),
    },
    example: Object.fromEntries(spec.inputs.map((input) => [input.name, input.example])),
    subjectInputs: spec.subject.map((binding) => binding.input),
    claimInputs: spec.claims.map((binding) => binding.input),
    condition: spec.condition ? { require: spec.condition.require, rows: spec.condition.rows ?? null, minRows: spec.condition.minRows, recentMonths: spec.condition.recentMonths?.months ?? null } : null,
    modes: spec.claims.length > 0 ? ['plain', 'encrypted'] : ['plain'],
    perSubjectDailyLimit: spec.perSubjectDailyLimit,
  };
}

export type ProductView = ReturnType<typeof toProductView>;
export type { ProductDefinition };
