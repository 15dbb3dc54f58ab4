import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuthorizer } from './authz/authorizer.js';
import { loadPolicyEngine } from './authz/policy-engine.js';
import type { Config } from './config/config.js';
import { migrateControlPlane, openControlPlane, type ControlPlane } from './db/connect.js';
import { createSnapshotStore } from './domain-store/snapshot-store.js';
import { keySourceOf, loadKeyRing, type KeyRing } from './identity/keys.js';
import type { Platform } from './platform.js';
import { createSqlParser } from './analysis/sql-parser.js';
import { createSyntheticTrial } from './analysis/synthetic-trial.js';
import { createBindCheck } from './analysis/bind-check.js';
import { loadDisclosurePolicy } from './policy/disclosure-policy.js';
import { createAnalysisCatalogue } from './catalog/analysis-catalogue.js';
import { createAuditTree, recordAuditEvents } from './audit/audit-log.js';
import { productDataUse } from './products/products.js';
import { describeForLog } from './errors/describe-for-log.js';
import { createProductService } from './products/product-service.js';
import { loadWorkingDayCalendar } from './governance/working-days.js';
import { loadGovernancePolicy } from './governance/governance-policy.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const policiesDir = path.join(projectRoot, 'policies');

/** Opens the control plane named by the config: PostgreSQL when DATABASE_URL is set, else PGlite in DATA_DIR. */
export function openConfiguredControlPlane(config: Config): Promise<ControlPlane> {
  return config.databaseUrl
    ? openControlPlane({ kind: 'postgres', url: config.databaseUrl })
    : openControlPlane({ kind: 'pglite', dataDir: path.join(config.dataDir, 'control-plane') });
}

/** Everything the server and the command line need, assembled once. Policies that fail validation stop start-up. */
export async function createPlatform(
  config: Config,
  options: { controlPlane?: ControlPlane; keys?: KeyRing; clock?: () => Date } = {},
): Promise<Platform> {
  const policyEngine = loadPolicyEngine(policiesDir);
  const disclosurePolicy = loadDisclosurePolicy(path.join(policiesDir, 'disclosure.yaml'));
  const calendar = loadWorkingDayCalendar(path.join(policiesDir, 'calendar'));
  const governance = loadGovernancePolicy(path.join(policiesDir, 'governance.yaml'));
  const controlPlane = options.controlPlane ?? (await openConfiguredControlPlane(config));
  await migrateControlPlane(controlPlane);
  const keys = options.keys ?? (await loadKeyRing(keySourceOf(config)));
  const clock = options.clock ?? (() => new Date());
  const store = createSnapshotStore(config.dataDir);
  const analysisCatalogue = createAnalysisCatalogue(controlPlane.db);
  const parser = await createSqlParser();
  return {
    config,
    controlPlane,
    db: controlPlane.db,
    keys,
    policyEngine,
    authorizer: createAuthorizer(policyEngine, controlPlane.db, clock, async (denial) => {
      // A denial is evidence for the regulator; failing to record it must not turn a 403 into a 500.
      try {
        await recordAuditEvents(controlPlane.db, [{ type: 'authz.denied', actor: denial.principal, operator: denial.operator, details: { action: denial.action, resource: denial.resource, policies: denial.policies } }], clock());
      } catch (error) {
        console.error(`[pds] could not record an authorization denial: ${describeForLog(error)}`);
      }
    }),
    store,
    clock,
    parser,
    bindCheck: createBindCheck(),
    syntheticTrial: createSyntheticTrial(),
    disclosurePolicy,
    analysisCatalogue,
    calendar,
    governance,
    audit: createAuditTree(controlPlane.db, keys, clock),
    products: createProductService({
      db: controlPlane.db,
      exclusiveTransactions: controlPlane.kind === 'pglite',
      keys,
      clock,
      store,
      analysisCatalogue,
      policiesDir,
      dataUseOf: (spec) => productDataUse({ analysisCatalogue, parser, disclosurePolicy }, spec),
    }),
  };
}
