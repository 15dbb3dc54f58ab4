import type { SqlParser } from './analysis/sql-parser.js';
import type { SyntheticTrial } from './analysis/synthetic-trial.js';
import type { BindCheck } from './analysis/bind-check.js';
import type { AuditTree } from './audit/audit-log.js';
import type { Authorizer } from './authz/authorizer.js';
import type { AnalysisCatalogue } from './catalog/analysis-catalogue.js';
import type { PolicyEngine } from './authz/policy-engine.js';
import type { Config } from './config/config.js';
import type { ControlPlane, Database } from './db/connect.js';
import type { SnapshotStore } from './domain-store/snapshot-store.js';
import type { KeyRing } from './identity/keys.js';
import type { DisclosurePolicy } from './policy/disclosure-policy.js';
import type { JobQueue } from './jobs/job-queue.js';
import type { ProductService } from './products/product-service.js';
import type { WorkingDayCalendar } from './governance/working-days.js';
import type { GovernancePolicy } from './governance/governance-policy.js';

/** What every part of the service is handed: nothing global, so tests can build one with their own clock and keys. */
export type Platform = {
  config: Config;
  controlPlane: ControlPlane;
  db: Database;
  keys: KeyRing;
  policyEngine: PolicyEngine;
  authorizer: Authorizer;
  store: SnapshotStore;
  clock: () => Date;
  /** DuckDB's parser, for analysing job SQL in the API process (it holds no data). */
  parser: SqlParser;
  /** DuckDB's binder over empty tables of the catalogue: type and GROUP BY mistakes are explained before a job runs. */
  bindCheck: BindCheck;
  /** Trial runs of accepted SQL over synthetic tables made from the catalogue alone (never the domain store). */
  syntheticTrial: SyntheticTrial;
  disclosurePolicy: DisclosurePolicy;
  /** The catalogue as the analyser sees it, cached until the catalogue changes. */
  analysisCatalogue: (options?: { maxAgeMilliseconds?: number }) => Promise<AnalysisCatalogue>;
  /** This process's view of the audit log's Merkle tree, and checkpoint signing. */
  audit: AuditTree;
  /** Working days for the measures' deadlines (policies/calendar/). */
  calendar: WorkingDayCalendar;
  /** Deadlines and limits of disputes and channels (policies/governance.yaml). */
  governance: GovernancePolicy;
  /** Product calls: quotas, verification indexes, metering and signed answers. */
  products: ProductService;
  /** Set once the queue is started (by `pds serve` or a test); submissions need it. */
  jobQueue?: JobQueue;
};
